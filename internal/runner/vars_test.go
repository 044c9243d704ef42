package runner

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/secret"
)

// An expectation reads the run's variables: a capture of an earlier step,
// the flow's vars; a value equal to a secret is redacted in the failure.
func TestExpectationsReadVariables(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/create":
			fmt.Fprint(w, `{"order":{"id":"A-1","total":42}}`)
		case "/get":
			fmt.Fprint(w, `{"id":"A-1","total":42,"sku":"SKU-9","token":"tok-secret"}`)
		}
	}))
	defer srv.Close()
	tests := []struct {
		name   string
		expect string
		class  result.Class
		msg    string
	}{
		{"capture equal", `json.id == {{order_id}}`, result.OK, ""},
		{"number capture", `json.total == {{total}}`, result.OK, ""},
		{"flow var differs", `json.sku == {{sku}}`, result.Assertion, `json.sku == {{sku}}: got "SKU-9" (sku is "SKU-1")`},
		{"secret-valued capture redacted", `json.sku == {{tok}}`, result.Assertion, `json.sku == {{tok}}: got "SKU-9" (tok is "[secret:TOK]")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			create := withCapture(withCapture(newStep("create", "POST", srv.URL+"/create", "status == 200"),
				"order_id", "json.order.id"), "total", "json.order.total")
			get := newStep("get", "GET", srv.URL+"/get", "status == 200", tt.expect)
			f := newFlow(create, get)
			f.Vars["sku"] = "SKU-1"
			f.Vars["tok"] = "tok-secret"
			res := mustRun(t, f, Options{Secrets: secret.NewSet(map[string]string{"TOK": "tok-secret"})})
			s := res.Steps[1]
			if s.Class != tt.class {
				t.Fatalf("class %s, want %s (%v)", s.Class, tt.class, s.Failures)
			}
			if tt.msg != "" && (len(s.Failures) == 0 || s.Failures[0].Message != tt.msg) {
				t.Fatalf("failures %v, want %q", s.Failures, tt.msg)
			}
		})
	}
}
