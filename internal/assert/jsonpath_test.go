package assert

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// keyParts are pieces of generated keys: gjson path syntax, quotes, escapes,
// white space, unicode and digits, so that escaping mistakes show.
var keyParts = []string{"a", "b", ".", "*", "?", "#", "|", "@", "\\", `"`, "[", "]", " ", ":", "!",
	"{", "}", "=", "é", "名", "0", "1", "-", "_", "$", "\t", ",", "%", "..", "@this", "#(", "\x00"}

func randKey(rng *rand.Rand) string {
	var b strings.Builder
	for range rng.IntN(4) {
		b.WriteString(keyParts[rng.IntN(len(keyParts))])
	}
	return b.String()
}

func randJSON(rng *rand.Rand, depth int) any {
	switch n := rng.IntN(8); {
	case depth > 0 && n < 3:
		obj := map[string]any{}
		for range 1 + rng.IntN(4) {
			obj[randKey(rng)] = randJSON(rng, depth-1)
		}
		return obj
	case depth > 0 && n < 5:
		arr := []any{}
		for range rng.IntN(4) {
			arr = append(arr, randJSON(rng, depth-1))
		}
		return arr
	case n == 5:
		return randKey(rng)
	case n == 6:
		return float64(rng.IntN(2000) - 1000)
	}
	return rng.IntN(2) == 0
}

// walk calls fn with every path in v (as json.… source) and its value.
func walk(v any, src string, fn func(src string, v any)) {
	fn(src, v)
	switch x := v.(type) {
	case map[string]any:
		for k, el := range x {
			walk(el, src+"["+strconv.Quote(k)+"]", fn)
			if isBareKey(k) {
				fn(src+"."+k, el)
			}
		}
	case []any:
		for i, el := range x {
			walk(el, src+"["+strconv.Itoa(i)+"]", fn)
			fn(src+"["+strconv.Itoa(i-len(x))+"]", el)
		}
	}
}

// TestJSONPathsAgainstEncodingJSON reads every path of random documents and
// compares with encoding/json: any key must be reachable exactly.
func TestJSONPathsAgainstEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	paths := 0
	for range 300 {
		doc := randJSON(rng, 4)
		body, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		r := &Response{Status: 200, Body: body}
		walk(doc, "json", func(src string, want any) {
			paths++
			v, err := CompileValue(src)
			if err != nil {
				t.Fatalf("CompileValue(%q): %v", src, err)
			}
			got, err := v.Eval(r)
			if err != nil {
				t.Fatalf("%s in %s: %v", src, body, err)
			}
			if s, ok := want.(string); ok {
				if got != s {
					t.Fatalf("%s in %s: got %q, want %q", src, body, got, s)
				}
				return
			}
			var gotV any
			if err := json.Unmarshal([]byte(got), &gotV); err != nil || !reflect.DeepEqual(gotV, want) {
				t.Fatalf("%s in %s: got %s, want %v", src, body, got, want)
			}
			// And an absent sibling key is missing, not something else.
			if m, ok := want.(map[string]any); ok {
				k := randKey(rng)
				if _, present := m[k]; !present {
					e := MustCompile("exists(" + src + "[" + strconv.Quote(k) + "])")
					if f, ok := e.Check(r); ok || f.Cause != Missing {
						t.Fatalf("%s in %s: absent key %q: %v %+v", e, body, k, ok, f)
					}
				}
			}
		})
	}
	t.Logf("%d paths", paths)
}
