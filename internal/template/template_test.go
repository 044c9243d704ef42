package template

import (
	"encoding/json"
	"errors"
	"runtime"
	"strings"
	"testing"
	"unsafe"
)

type mapScope struct{ vars, secrets map[string]string }

func (m mapScope) Var(n string) (string, bool)    { v, ok := m.vars[n]; return v, ok }
func (m mapScope) Secret(n string) (string, bool) { v, ok := m.secrets[n]; return v, ok }

var scope = mapScope{
	vars:    map[string]string{"base": "http://shop", "id": "42", "quote": `a"b\c`, "run.id": "r1"},
	secrets: map[string]string{"PW": "hunter2"},
}

func TestParseExpand(t *testing.T) {
	tests := []struct {
		src, want string
		refs      []Ref
	}{
		{"plain", "plain", nil},
		{"", "", nil},
		{"{{base}}/orders/{{id}}", "http://shop/orders/42", []Ref{{"base", false, 0}, {"id", false, 16}}},
		{"{{ base }}", "http://shop", []Ref{{"base", false, 0}}},
		{"pw={{secret:PW}}", "pw=hunter2", []Ref{{"PW", true, 3}}},
		{"{{ secret: PW }}", "hunter2", []Ref{{"PW", true, 0}}},
		{"{{run.id}}", "r1", []Ref{{"run.id", false, 0}}},
		{"a }} b", "a }} b", nil},
		{"{{id}}{{id}}", "4242", []Ref{{"id", false, 0}, {"id", false, 6}}},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			tp, err := Parse(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tp.ExpandString(scope)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("expand = %q, want %q", got, tt.want)
			}
			if len(tp.Refs()) != len(tt.refs) {
				t.Fatalf("refs = %v, want %v", tp.Refs(), tt.refs)
			}
			for i, r := range tp.Refs() {
				if r != tt.refs[i] {
					t.Errorf("ref %d = %+v, want %+v", i, r, tt.refs[i])
				}
			}
			if tp.String() != tt.src {
				t.Errorf("String = %q", tp.String())
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		src    string
		offset int
		msg    string
	}{
		{"x{{base", 1, "unclosed"},
		{"{{}}", 0, "empty name"},
		{"ab{{1x}}", 2, "unexpected '1'"},
		{"{{a b}}", 0, "unexpected ' '"},
		{"{{secret:}}", 0, "empty name"},
	}
	for _, tt := range tests {
		_, err := Parse(tt.src)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Fatalf("%q: err = %v, want SyntaxError", tt.src, err)
		}
		if se.Offset != tt.offset || !strings.Contains(se.Msg, tt.msg) {
			t.Errorf("%q: got offset %d %q, want %d containing %q", tt.src, se.Offset, se.Msg, tt.offset, tt.msg)
		}
	}
}

func TestMissing(t *testing.T) {
	_, err := MustParse("{{nope}}").ExpandString(scope)
	var me *MissingError
	if !errors.As(err, &me) || me.Name != "nope" || me.Secret {
		t.Fatalf("err = %v", err)
	}
	_, err = MustParse("{{secret:NOPE}}").ExpandString(scope)
	if !errors.As(err, &me) || me.Name != "NOPE" || !me.Secret {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatal("error leaks a secret")
	}
}

func TestJoinJSON(t *testing.T) {
	// A JSON body pre-encoded at load: literals verbatim, values escaped.
	tp := Join(
		Part{T: Literal(`{"q":"`)},
		Part{T: MustParse("{{quote}}-{{id}}"), Esc: JSONString},
		Part{T: Literal(`","pw":"`)},
		Part{T: MustParse("{{secret:PW}}"), Esc: JSONString},
		Part{T: Literal(`"}`)},
	)
	got, err := tp.ExpandString(scope)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]string
	if err := json.Unmarshal([]byte(got), &v); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	if v["q"] != `a"b\c-42` || v["pw"] != "hunter2" {
		t.Errorf("decoded %v", v)
	}
	if refs := tp.Refs(); len(refs) != 3 || refs[2].Name != "PW" || !refs[2].Secret {
		t.Errorf("refs %+v", refs)
	}
	if tp.Refs()[0].Offset != len(`{"q":"`) {
		t.Errorf("offset %d", tp.Refs()[0].Offset)
	}
}

func TestJSONEscapeMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"plain", "\x00\x1f\n\r\t", `"\`, "é ü 日本", "\u2028\u2029", "bad\xffutf8", "<&>"} {
		got := string(AppendJSONString(nil, s))
		var back string
		if err := json.Unmarshal([]byte(`"`+got+`"`), &back); err != nil {
			t.Fatalf("%q -> %q: %v", s, got, err)
		}
		want := strings.ToValidUTF8(s, "\ufffd")
		if back != want {
			t.Errorf("%q round-trips to %q", s, back)
		}
	}
}

func TestExpandEnv(t *testing.T) {
	env := map[string]string{"URL": "http://x", "EMPTY": ""}
	lookup := func(n string) (string, bool) { v, ok := env[n]; return v, ok }
	tests := []struct {
		in, want, errHas string
		off              int
	}{
		{"no refs", "no refs", "", 0},
		{"${env:URL}/a", "http://x/a", "", 0},
		{"${env:NOPE:-http://d}", "http://d", "", 0},
		{"${env:EMPTY:-dflt}", "dflt", "", 0},
		{"${env:EMPTY}", "", "", 0},
		{"${env:URL}${env:URL}", "http://xhttp://x", "", 0},
		{"ab${env:NOPE}", "", "environment variable NOPE is not set", 2},
		{"${env:URL", "", "unclosed", 0},
		{"x ${env:}", "", "empty environment variable name", 2},
		{"${env:A-B}", "", "bad environment variable name", 0},
		{"$HOME ${HOME}", "$HOME ${HOME}", "", 0},
	}
	for _, tt := range tests {
		got, err := ExpandEnv(tt.in, lookup)
		if tt.errHas != "" {
			var ee *EnvError
			if !errors.As(err, &ee) || !strings.Contains(ee.Msg, tt.errHas) || ee.Offset != tt.off {
				t.Errorf("%q: err = %v, want offset %d %q", tt.in, err, tt.off, tt.errHas)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestZeroAndNil(t *testing.T) {
	var tp *Template
	if s, err := tp.ExpandString(scope); s != "" || err != nil {
		t.Fatal(s, err)
	}
	if !tp.IsLiteral() || tp.Refs() != nil || tp.String() != "" {
		t.Fatal("nil template")
	}
	if got, _ := Literal("{{x}}").ExpandString(scope); got != "{{x}}" {
		t.Fatalf("literal expanded: %q", got)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"{{a}}", "x{{secret:B}}y", "{{", "}}{{", "{{ a.b-c }}", "${env:X}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		tp, err := Parse(src)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Offset < 0 || se.Offset > len(src) {
				t.Fatalf("bad error %v", err)
			}
			return
		}
		if tp.String() != src {
			t.Fatalf("String %q != %q", tp.String(), src)
		}
		all := mapScope{vars: map[string]string{}, secrets: map[string]string{}}
		for _, r := range tp.Refs() {
			if src[r.Offset:r.Offset+2] != "{{" {
				t.Fatalf("ref offset %d not at {{", r.Offset)
			}
			all.vars[r.Name], all.secrets[r.Name] = "v", "s"
		}
		if _, err := tp.ExpandString(all); err != nil {
			t.Fatal(err)
		}
		_, _ = ExpandEnv(src, func(string) (string, bool) { return "", false })
	})
}

func BenchmarkExpand(b *testing.B) {
	tp := MustParse("{{base}}/api/orders/{{id}}/pay")
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = tp.Expand(buf[:0], scope)
	}
}

// TestJoinSharesSource: a joined template's literals point into its
// source, not into copies of their own (a configuration keeps one per
// flow for bodies that differ), and it still expands to the same text.
func TestJoinSharesSource(t *testing.T) {
	tp := Join(
		Part{T: Literal(`{"user":"synthetic-`)},
		Part{T: Literal(`1","pw":"`)},
		Part{T: MustParse("{{secret:PW}}"), Esc: JSONString},
		Part{T: Literal(`"}`)},
	)
	src := tp.String()
	lo := uintptr(unsafe.Pointer(unsafe.StringData(src)))
	for _, sg := range tp.segments() {
		if sg.ref >= 0 {
			continue
		}
		if p := uintptr(unsafe.Pointer(unsafe.StringData(sg.lit))); p < lo || p+uintptr(len(sg.lit)) > lo+uintptr(len(src)) {
			t.Errorf("literal %q is a copy of its own, not in the source %q", sg.lit, src)
		}
	}
	got, err := tp.ExpandString(scope)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"user":"synthetic-1","pw":"hunter2"}`; got != want {
		t.Errorf("expanded %s, want %s", got, want)
	}
}

// TestLiteralKeptSmall: a template without placeholders is its source and
// one 24-byte allocation, whichever way it is made (a configuration of
// 10,000 flows keeps one for each login's body; it was 64 bytes and a
// 32-byte segment).
func TestLiteralKeptSmall(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector grows every allocation")
	}
	src := `{"user":"synthetic-1","password":"not-a-secret"}`
	for name, make := range map[string]func() *Template{
		"Parse":   func() *Template { return MustParse(src) },
		"Literal": func() *Template { return Literal(src) },
	} {
		var sink *Template
		const n = 1000
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range n {
			sink = make()
		}
		runtime.ReadMemStats(&after)
		if per := (after.TotalAlloc - before.TotalAlloc) / n; per > 24 {
			t.Errorf("%s: %d bytes a literal template, want <= 24", name, per)
		}
		if got, err := sink.ExpandString(nil); err != nil || got != src || !sink.IsLiteral() || sink.Refs() != nil {
			t.Errorf("%s: %q %v", name, got, err)
		}
	}
	// Joined literals are the joined source, expanded as such.
	j := Join(Part{T: Literal(`{"a":`)}, Part{T: MustParse(`"b"}`), Esc: JSONString})
	if got, err := j.ExpandString(nil); err != nil || got != `{"a":"b"}` || !j.IsLiteral() {
		t.Errorf("joined literals: %q %v", got, err)
	}
}
