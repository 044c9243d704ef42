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
