package runner_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/kinds/kindtest"
	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/runner"
)

// A step with a tls: block of its own gets a transport with those settings:
// it trusts the private CA the flow does not; steps with the same step
// settings share that transport's connection within a run; the flow's
// steps keep the flow's settings (and fail against the private CA).
func TestStepTLS(t *testing.T) {
	ca := kindtest.NewCA(t)
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"ok":true}`)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Leaf(t, "server", time.Now().Add(time.Hour), "127.0.0.1")}, MinVersion: tls.VersionTLS12}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	own := "    request: {url: \"" + srv.URL + "/\", tls: {ca_file: ca.pem}}\n"
	flow := "name: f\nsteps:\n  - name: a\n" + own + "  - name: b\n" + own +
		"  - name: flows_own\n    request: {url: \"" + srv.URL + "/\"}\n"
	for _, shared := range []bool{false, true} {
		t.Run(fmt.Sprintf("shared transports %v", shared), func(t *testing.T) {
			conns.Store(0)
			var o runner.Options
			if shared {
				o.Transports = runner.NewTransports()
			}
			r := kindtest.RunWith(t, dir, flow, o)
			if a, b, c := r.Steps[0], r.Steps[1], r.Steps[2]; a.Class != result.OK || b.Class != result.OK || c.Class != result.TLS {
				t.Fatalf("classes %s %s %s (%s / %s / %s)", a.Class, b.Class, c.Class, a.Message(), b.Message(), c.Message())
			}
			if !r.Steps[1].Timings.Reused {
				t.Errorf("step b did not reuse step a's connection")
			}
			// a's connection (b reuses it), and the flow's failed handshake.
			if n := conns.Load(); n != 2 {
				t.Errorf("%d connections, want 2", n)
			}
			// A second run starts with fresh connections, as every run does.
			conns.Store(0)
			if r := kindtest.RunWith(t, dir, flow, o); r.Steps[0].Timings.Reused || r.Steps[0].Class != result.OK {
				t.Errorf("second run: step a reused a connection or failed: %s", r.Steps[0].Message())
			}
		})
	}
}

// tls.min_version: against a server that speaks TLS 1.2 at most, a flow
// or step asking for 1.3 fails with class tls; the default (1.2) and an
// explicit 1.2 pass.
func TestTLSMinVersion(t *testing.T) {
	ca := kindtest.NewCA(t)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"ok":true}`)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Leaf(t, "server", time.Now().Add(time.Hour), "127.0.0.1")},
		MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, flowTLS, stepTLS string
		class                  result.Class
	}{
		{"default", "{ca_file: ca.pem}", "", result.OK},
		{"flow 1.2", "{ca_file: ca.pem, min_version: \"1.2\"}", "", result.OK},
		{"flow 1.3", "{ca_file: ca.pem, min_version: \"1.3\"}", "", result.TLS},
		{"step 1.3", "{ca_file: ca.pem}", ", tls: {min_version: \"1.3\"}", result.TLS},
		{"step 1.2 under a flow's 1.3", "{ca_file: ca.pem, min_version: \"1.3\"}", ", tls: {min_version: \"1.2\"}", result.OK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := kindtest.Run(t, dir, "name: f\ntls: "+tc.flowTLS+"\nsteps:\n  - name: get\n    request: {url: \""+srv.URL+"/\""+tc.stepTLS+"}\n    expect: [json.ok == true]\n")
			if s := r.Steps[0]; s.Class != tc.class {
				t.Fatalf("class %s, want %s (%s)", s.Class, tc.class, s.Message())
			} else if tc.class == result.TLS {
				t.Logf("%s: %s", tc.name, s.Message())
			}
		})
	}
}
