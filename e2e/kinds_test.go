package e2e

import (
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/prober-dev/prober/internal/kinds/kindtest"
)

// TestOnceMixedKinds runs one flow of every step kind but the browser
// (dns, icmp, tls, tcp, grpc, HTTP and an HTTP cleanup) through the
// prober binary against real servers on loopback: values flow from the dns
// answer, the tcp banner, the certificate and the health check into the
// HTTP request. Then the gRPC service stops serving, and the same command
// fails at that step, with its class, the server's answer and exit 1.
func TestOnceMixedKinds(t *testing.T) {
	var (
		mu  sync.Mutex
		got []string
	)
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path+" v="+r.URL.Query().Get("v")+" serving="+r.URL.Query().Get("serving")+
			" traceparent="+fmt.Sprint(r.Header.Get("Traceparent") != ""))
		mu.Unlock()
		io.WriteString(w, `{"ok": true}`)
	}))
	defer api.Close()
	_, apiPort, _ := net.SplitHostPort(strings.TrimPrefix(api.URL, "https://"))

	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: api.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}

	// A DNS server that knows api.test, a Redis-like banner on TCP and
	// gRPC health.
	dnsAddr := kindtest.ServeDNSA(t, "api.test.", "127.0.0.1")
	banner := kindtest.ServeBanner(t, "+OK redis-7\r\n")
	healthAddr, hs := kindtest.ServeGRPCHealth(t, "shop")

	flow := `name: mixed
tls: {ca_file: ca.pem}
steps:
  - name: resolve
    dns: {name: api.test, server: "` + dnsAddr + `"}
    expect: [answers.count == 1]
    capture: {ip: 'match(answers, "^\\S+")'}
  - name: reach
    icmp: {host: "{{ip}}", count: 2, interval: 10ms}
    expect: [loss == 0]
  - name: cert
    tls: {address: "{{ip}}:` + apiPort + `", ca_file: ca.pem}
    expect: [tls.verified, cert.expires_in > 24h]
  - name: redis
    tcp: {address: "` + banner + `", reply: "\\r\\n"}
    capture: {version: 'match(body, "redis-(\\d+)")'}
  - name: health
    grpc: {address: "` + healthAddr + `", service: shop}
    capture: {serving: serving}
  - name: report
    request: {url: "https://{{ip}}:` + apiPort + `/report", query: {v: "{{version}}", serving: "{{serving}}"}}
    expect: [json.ok, status == 200]
cleanup:
  - name: undo
    request: {method: DELETE, url: "https://{{ip}}:` + apiPort + `/report/{{version}}"}
`
	for name, body := range map[string]string{"probes.yaml": "flows: [mixed.yaml]\n", "mixed.yaml": flow} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	out, errOut, code := runCmd(t, nil, "once", "--config", filepath.Join(dir, "probes.yaml"))
	if code != 0 {
		t.Fatalf("healthy mixed flow: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, step := range []string{"resolve", "reach", "cert", "redis", "health", "report", "undo"} {
		if !strings.Contains(out, step) {
			t.Errorf("once output lacks step %s:\n%s", step, out)
		}
	}
	mu.Lock()
	want := []string{"GET /report v=7 serving=SERVING traceparent=true", "DELETE /report/7 v= serving= traceparent=true"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("the API saw %q, want %q", got, want)
	}
	got = nil
	mu.Unlock()

	hs.SetServingStatus("shop", healthgrpc.HealthCheckResponse_NOT_SERVING)
	out, errOut, code = runCmd(t, nil, "once", "--config", filepath.Join(dir, "probes.yaml"))
	if code != 1 {
		t.Fatalf("not serving: exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	for _, w := range []string{"FAIL health", "NOT_SERVING", "class=assertion", "mixed failed at step health"} {
		if !strings.Contains(out, w) {
			t.Errorf("once output lacks %q:\n%s", w, out)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	// The report is skipped; the cleanup lacks {{serving}} only in the
	// report, so it still runs with the captured version.
	for _, g := range got {
		if strings.HasPrefix(g, "GET /report") {
			t.Errorf("the report ran after the failed health check: %q", got)
		}
	}
}
