package assert

import (
	"errors"
	"testing"
	"time"
)

// FuzzValue is the capture path: any value expression against any body
// either compiles to a Value whose Eval never panics and answers a string or
// an EvalError, or fails to compile with an offset inside the source.
func FuzzValue(f *testing.F) {
	for _, s := range []string{`json.token`, `json.items[0].id`, `header.Location`, `status`, `body`,
		"match(body, `ref=(\\w+)`)", `len(json.items)`, `lower(header.X)`, `json["a.b"][-1]`, `json`, `duration`, `json.`} {
		for _, b := range []string{fuzzBodies[4], fuzzBodies[5], fuzzBodies[7], fuzzBodies[8], ""} {
			f.Add(s, b)
		}
	}
	f.Fuzz(func(t *testing.T, src, body string) {
		v, err := CompileValue(src)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Offset < 0 || se.Offset > len(src) {
				t.Fatalf("CompileValue(%q): %v", src, err)
			}
			return
		}
		r := resp(200, body, time.Millisecond, "Location", "/x", "X", "Y")
		got, err := v.Eval(r)
		if err != nil {
			var ee *EvalError
			if !errors.As(err, &ee) || ee.Msg == "" {
				t.Fatalf("Eval(%q) on %q: %T %v", src, body, err, err)
			}
			return
		}
		// A captured value must not alias the (reused) body buffer.
		if len(got) > 0 && len(r.Body) > 0 {
			r.Body[0] ^= 0xff
			again, _ := v.Eval(r)
			_ = again
		}
	})
}
