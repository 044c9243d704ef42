package runner

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/secret"
	"github.com/prober-dev/prober/internal/template"
)

// TestFailureMessagesRedactEchoedSecrets: a server that echoes what it was
// sent, failed by expectations that show the echo (issue 13, item 1).
func TestFailureMessagesRedactEchoedSecrets(t *testing.T) {
	const (
		quoted = `ab"cd&ef`                   // (a): shown Go-quoted as ab\"cd&ef
		pw     = "Pw0rd-LeakCanary"           // (b): echoed as basic auth
		long   = "LeakCanary-0123456789abcde" // (c): straddles the 120-byte cut
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Echo-Key", r.Header.Get("X-Key"))
		w.Header().Set("X-Echo-Auth", r.Header.Get("Authorization"))
		w.Header().Set("X-Long", strings.Repeat("x", 100)+r.Header.Get("X-Long"))
	}))
	defer srv.Close()
	secrets := secret.NewSet(map[string]string{"K": quoted, "PW": pw, "LONG": long})

	auth := newStep("auth", "GET", srv.URL, `header.X-Echo-Auth == "nope"`)
	httpOf(auth).BasicAuth = &config.BasicAuth{User: template.MustParse("u"), Password: template.MustParse("{{secret:PW}}")}
	for _, tt := range []struct {
		name   string
		step   *config.Step
		secret string
		shown  []string // what today's code would show of it
	}{
		{"go-quoted", withHeader(newStep("s", "GET", srv.URL, `header.X-Echo-Key == "nope"`), "X-Key", "{{secret:K}}"),
			quoted, []string{quoted, `ab\"cd&ef`}},
		{"basic auth", auth, pw, []string{base64.StdEncoding.EncodeToString([]byte("u:" + pw))[:12]}},
		{"cut", withHeader(newStep("s", "GET", srv.URL, `header.X-Long == "nope"`), "X-Long", "{{secret:LONG}}"),
			long, []string{long[:8], long[:19]}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := mustRun(t, newFlow(tt.step), Options{Secrets: secrets})
			if r.OK() || len(r.Steps[0].Failures) == 0 {
				t.Fatalf("the step should fail: %s", r.Summary())
			}
			f := r.Steps[0].Failures[0]
			b, _ := json.Marshal(r)
			for _, out := range []string{f.Actual, f.Message, r.Summary(), string(b)} {
				for _, s := range tt.shown {
					if strings.Contains(out, s) {
						t.Errorf("%q shown in %s", s, out)
					}
				}
				for i := 0; i+8 <= len(tt.secret); i++ {
					if strings.Contains(out, tt.secret[i:i+8]) || strings.Contains(out, strconv.Quote(tt.secret[i : i+8])[1:9]) {
						t.Errorf("8 bytes of the secret (%q) in %s", tt.secret[i:i+8], out)
					}
				}
			}
			if !strings.Contains(f.Actual, "[secret:") {
				t.Errorf("no redaction marker in %s", f.Actual)
			}
		})
	}
}
