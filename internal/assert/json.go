package assert

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"github.com/tidwall/gjson"
)

// jsonCache remembers whether Body is valid JSON, so that the several JSON
// expectations of a step validate the body once, not once each.
type jsonCache struct {
	state uint8 // jsonUnknown, jsonValid or jsonInvalid
	// The Body the state is for: a runner that replaces Body without Reset
	// gets a fresh validation instead of a stale answer.
	data *byte
	n    int
}

const (
	jsonUnknown uint8 = iota
	jsonValid
	jsonInvalid
)

// isJSON reports whether r.Body is valid JSON, validating at most once per
// response.
func (r *Response) isJSON() bool {
	c := &r.json
	d := unsafe.SliceData(r.Body)
	if c.state == jsonUnknown || c.data != d || c.n != len(r.Body) {
		c.data, c.n, c.state = d, len(r.Body), jsonInvalid
		if gjson.ValidBytes(r.Body) {
			c.state = jsonValid
		}
	}
	return c.state == jsonValid
}

// bodyString views the body as a string without copying: checks run on every
// probe step and must not copy a body of up to a megabyte. The view is only
// used while checking; anything kept (captured values, failure text) is
// copied first, because the runner reuses the buffer.
func (r *Response) bodyString() string {
	return unsafe.String(unsafe.SliceData(r.Body), len(r.Body))
}

// pathStep is one step of a JSON path as written: a key or an array index.
type pathStep struct {
	key   string
	index int
	isIdx bool
}

// segKind is how a run of steps is looked up.
type segKind uint8

const (
	segPath     segKind = iota // a gjson path
	segNegIndex                // an index from the end of an array
	segEmptyKey                // the key "", which gjson paths cannot express everywhere
)

type pathSeg struct {
	kind  segKind
	gpath string
	index int // segNegIndex: negative
}

// jsonPath is a compiled JSON path. Most paths are one gjson path string;
// negative indexes and empty keys split it into segments.
type jsonPath struct {
	steps []pathStep
	segs  []pathSeg
	text  string // canonical form: json.data.items[0]["a.b"]
}

func newJSONPath(steps []pathStep) *jsonPath {
	jp := &jsonPath{steps: steps, text: pathText(steps)}
	var comps []string
	flush := func() {
		if len(comps) > 0 {
			jp.segs = append(jp.segs, pathSeg{kind: segPath, gpath: strings.Join(comps, ".")})
			comps = nil
		}
	}
	for _, st := range steps {
		switch {
		case st.isIdx && st.index >= 0:
			comps = append(comps, strconv.Itoa(st.index))
		case st.isIdx:
			flush()
			jp.segs = append(jp.segs, pathSeg{kind: segNegIndex, index: st.index})
		case st.key == "":
			flush()
			jp.segs = append(jp.segs, pathSeg{kind: segEmptyKey})
		default:
			comps = append(comps, gjson.Escape(st.key))
		}
	}
	flush()
	return jp
}

// get looks the path up in a valid JSON document.
func (jp *jsonPath) get(doc string) (gjson.Result, bool) {
	if len(jp.segs) == 1 && jp.segs[0].kind == segPath {
		res := gjson.Get(doc, jp.segs[0].gpath)
		return res, res.Exists()
	}
	res := gjson.Parse(doc)
	for _, sg := range jp.segs {
		switch sg.kind {
		case segPath:
			res = res.Get(sg.gpath)
		case segNegIndex:
			res = fromEnd(res, sg.index)
		case segEmptyKey:
			res = lookupKey(res, "")
		}
		if !res.Exists() {
			return res, false
		}
	}
	return res, res.Exists()
}

// fromEnd is element len+i (i < 0) of an array.
func fromEnd(arr gjson.Result, i int) gjson.Result {
	if !arr.IsArray() {
		return gjson.Result{}
	}
	return element(arr, count(arr.Raw)+i)
}

func element(arr gjson.Result, i int) gjson.Result {
	var out gjson.Result
	if i < 0 {
		return out
	}
	n := 0
	arr.ForEach(func(_, v gjson.Result) bool {
		if n == i {
			out = v
			return false
		}
		n++
		return true
	})
	return out
}

// lookupKey finds a key of an object by exact comparison.
func lookupKey(obj gjson.Result, key string) gjson.Result {
	var out gjson.Result
	if !obj.IsObject() {
		return out
	}
	obj.ForEach(func(k, v gjson.Result) bool {
		if k.Str == key {
			out = v
			return false
		}
		return true
	})
	return out
}

// hasKey reports whether a JSON object has a key.
func hasKey(raw, key string) bool {
	return lookupKey(gjson.Parse(raw), key).Exists()
}

// explainMissing walks the path step by step to say where it breaks, for
// failure messages: `no field "id" in json.data`, `json.items has 2
// elements`. It returns the reason and whether the break is before the last
// step (a parent is missing or not a container).
func (jp *jsonPath) explainMissing(doc string) (reason string, parent bool) {
	cur := gjson.Parse(doc)
	for i, st := range jp.steps {
		prefix := pathText(jp.steps[:i])
		last := i == len(jp.steps)-1
		var next gjson.Result
		switch {
		case st.isIdx || (cur.IsArray() && isIntText(st.key) && st.key[0] != '-'):
			// gjson reads a numeric key of an array as an index; so do we.
			if !cur.IsArray() {
				return prefix + " is " + fromResult(cur).k.String() + ", not an array", true
			}
			idx := st.index
			if !st.isIdx {
				idx, _ = strconv.Atoi(st.key)
			}
			n := count(cur.Raw)
			if idx < 0 {
				idx += n
			}
			next = element(cur, idx)
			if !next.Exists() {
				return prefix + " has " + plural(n, "element"), !last
			}
		default:
			if !cur.IsObject() {
				return prefix + " is " + fromResult(cur).k.String() + ", not an object", true
			}
			next = lookupKey(cur, st.key)
			if !next.Exists() {
				if i == 0 {
					return "no field " + strconv.Quote(st.key), false
				}
				return "no field " + strconv.Quote(st.key) + " in " + prefix, !last
			}
		}
		cur = next
	}
	return "no such field", false
}

func plural(n int, what string) string {
	switch n {
	case 0:
		return "no " + what + "s"
	case 1:
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// pathText is the canonical source form of a JSON path.
func pathText(steps []pathStep) string {
	var b strings.Builder
	b.WriteString("json")
	for _, st := range steps {
		switch {
		case st.isIdx:
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(st.index))
			b.WriteByte(']')
		case isBareKey(st.key):
			b.WriteByte('.')
			b.WriteString(st.key)
		default:
			b.WriteByte('[')
			b.WriteString(strconv.Quote(st.key))
			b.WriteByte(']')
		}
	}
	return b.String()
}

// isKeyByte is a byte allowed in a key written after a dot: json.trace-id,
// json.@type, json.名前. Others need json["..."].
func isKeyByte(c byte) bool {
	return isLetter(c) || isDigit(c) || c == '_' || c == '-' || c == '$' || c == '@' || c >= 0x80
}

// keyLen is the length of the bare key at the start of s: ASCII key bytes
// and any non-ASCII character but a space (an expectation's source is
// trimmed of Unicode spaces, so a key ending in one would not read back).
func keyLen(s string) int {
	i := 0
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if !isKeyByte(c) {
				break
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || unicode.IsSpace(r) {
			break
		}
		i += size
	}
	return i
}

func isBareKey(s string) bool {
	return s != "" && keyLen(s) == len(s)
}
