package assert

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

type mapVars map[string]string

func (m mapVars) Var(name string) (string, bool) { v, ok := m[name]; return v, ok }

// {{name}} compares with a run variable, converted to the other side's type.
func TestVarOperand(t *testing.T) {
	vars := mapVars{"order_id": "A-1", "n": "3", "big": "12345678901234567890", "yes": "true", "max": "2s", "code": "201", "word": "shop"}
	r := &Response{Status: 201, Duration: time.Second, Header: http.Header{"X-Order": {"A-1"}},
		Body: []byte(`{"order":{"id":"A-1","n":3,"big":12345678901234567890,"ok":true},"tags":["shop","x"]}`), Vars: vars}
	tests := []struct {
		src string
		ok  bool
		msg string
	}{
		{`json.order.id == {{order_id}}`, true, ""},
		{`json.order.id == {{ order_id }}`, true, ""},
		{`{{order_id}} == json.order.id`, true, ""},
		{`json.order.n == {{n}}`, true, ""},
		{`json.order.big == {{big}}`, true, ""},
		{`json.order.ok == {{yes}}`, true, ""},
		{`status == {{code}}`, true, ""},
		{`duration < {{max}}`, true, ""},
		{`header.X-Order == {{order_id}}`, true, ""},
		{`body contains {{order_id}}`, true, ""},
		{`json.tags contains {{word}}`, true, ""},
		{`json.order.n < {{n}}`, false, `json.order.n < {{n}}: got 3 (n is 3)`},
		{`json.order.id != {{order_id}}`, false, `json.order.id != {{order_id}}: got "A-1" (order_id is "A-1")`},
		{`json.order.n == {{order_id}}`, false, `json.order.n == {{order_id}}`},
		{`json.order.id == {{nope}}`, false, `json.order.id == {{nope}}: got nothing (variable nope is not set)`},
	}
	for _, tt := range tests {
		e, err := Compile(tt.src)
		if err != nil {
			t.Fatalf("%s: %v", tt.src, err)
		}
		f, ok := e.Check(r)
		if ok != tt.ok {
			t.Errorf("%s: ok %v, want %v (%s)", tt.src, ok, tt.ok, f.Message)
			continue
		}
		if !ok && !strings.HasPrefix(f.Message, tt.msg) {
			t.Errorf("%s: message %q, want %q", tt.src, f.Message, tt.msg)
		}
	}
	// Without a scope (a Response nobody gave variables) a variable is missing.
	if f, ok := MustCompile(`json.order.id == {{order_id}}`).Check(&Response{Body: r.Body}); ok || f.Cause != Missing {
		t.Errorf("no Vars: %v %+v", ok, f)
	}
	// Reset keeps the variables: they outlive one response.
	r.Reset()
	if r.Vars == nil {
		t.Error("Reset dropped Vars")
	}
}

func TestVarOperandErrors(t *testing.T) {
	tests := []struct {
		src string
		off int
		msg string
	}{
		{`json.token == {{secret:TOKEN}}`, 14, "secrets cannot be used in expectations: a failed check shows the values it compared"},
		{`json.id == {{order_id`, 11, "unclosed {{: write {{name}}"},
		{`json.id == {{a-b}}`, 11, `expected a variable name in {{...}}, found "a-b"`},
		{`{{order_id}}`, 0, "{{order_id}} alone is a constant, not a check; compare a part of the response, e.g. status == 200"},
		{`{{a}} == {{b}}`, 0, "this compares two constants; one side must read the response (status, duration, body, header.<name>, json.<path>)"},
		{`body matches {{re}}`, 13, "matches needs a regular expression literal; compare a variable with == or contains"},
		{`status in [{{a}}]`, 11, "a list holds only literals (numbers, strings, durations, true, false, null), not {{a}}"},
	}
	for _, tt := range tests {
		_, err := Compile(tt.src)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("%s: %v, want a SyntaxError", tt.src, err)
			continue
		}
		if se.Offset != tt.off || se.Msg != tt.msg {
			t.Errorf("%s: at %d %q, want at %d %q", tt.src, se.Offset, se.Msg, tt.off, tt.msg)
		}
	}
	e := MustCompile(`json.a == {{x}}`)
	if v := e.Vars(); len(v) != 1 || v[0] != (VarRef{Name: "x", Offset: 12}) {
		t.Errorf("Vars %+v", v)
	}
	if got := MustCompile(`json.a ==  {{ x }}`).format(); got != `json.a == {{x}}` {
		t.Errorf("format %q", got)
	}
	if _, err := CompileValue(`{{x}}`); err == nil {
		t.Error("a capture of a variable compiled")
	}
}
