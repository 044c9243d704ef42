package runner_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/kinds/kindtest"
	"github.com/prober-dev/prober/internal/result"
)

// A server that requires a client certificate signed by its CA: a flow with
// tls.client_cert passes; one without fails with class tls (the server's
// "certificate required" alert, read by the client after the handshake).
func TestClientCertificate(t *testing.T) {
	ca := kindtest.NewCA(t)
	srv := kindtest.ServeMTLS(t, ca, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"cn": %q}`, r.TLS.PeerCertificates[0].Subject.CommonName)
	}))

	dir := t.TempDir()
	cert, key := kindtest.PEM(t, ca.Leaf(t, "prober-client", time.Now().Add(time.Hour)))
	stranger, strangerKey := kindtest.PEM(t, kindtest.NewCA(t).Leaf(t, "stranger", time.Now().Add(time.Hour)))
	for name, b := range map[string][]byte{"ca.pem": ca.PEM, "c.pem": cert, "c-key.pem": key, "s.pem": stranger, "s-key.pem": strangerKey} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	step := "steps:\n  - name: get\n    request: {url: \"" + srv.URL + "/\"}\n    expect: ['json.cn == \"prober-client\"']\n"
	for _, tc := range []struct {
		name, tls string
		class     result.Class
	}{
		{"with the certificate", "tls: {ca_file: ca.pem, client_cert: c.pem, client_key: c-key.pem}\n", result.OK},
		{"without", "tls: {ca_file: ca.pem}\n", result.TLS},
		{"from another CA", "tls: {ca_file: ca.pem, client_cert: s.pem, client_key: s-key.pem}\n", result.TLS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := kindtest.Run(t, dir, "name: f\n"+tc.tls+step)
			s := r.Steps[0]
			if s.Class != tc.class {
				t.Fatalf("class %s, want %s (%s)", s.Class, tc.class, s.Message())
			}
			if tc.class == result.TLS && !strings.Contains(s.Message(), "tls: ") {
				t.Errorf("message %q does not say tls", s.Message())
			}
			t.Logf("%s: %s %s", tc.name, s.Class, s.Message())
		})
	}
}
