package kinds_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/prober-dev/prober/internal/kinds/dnskind"
	"github.com/prober-dev/prober/internal/kinds/grpckind"
	"github.com/prober-dev/prober/internal/kinds/icmpkind"
	"github.com/prober-dev/prober/internal/kinds/kindtest"
	"github.com/prober-dev/prober/internal/kinds/tcpkind"
	"github.com/prober-dev/prober/internal/kinds/tlskind"
)

// TestMixedFlow: one flow of dns, icmp, tls, tcp, grpc and HTTP steps,
// values flowing from a dns answer, a tcp reply, a certificate and a
// health check into the next steps and an HTTP request, and an HTTP cleanup.
func TestMixedFlow(t *testing.T) {
	var got []string
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.Path+" "+r.URL.Query().Get("v")+" "+r.URL.Query().Get("issuer")+" "+r.URL.Query().Get("serving"))
		io.WriteString(w, `{"ok": true}`)
	}))
	defer api.Close()
	banner := kindtest.ServeBanner(t, "+OK redis-7\r\n")
	healthAddr, _ := kindtest.ServeGRPCHealth(t, "shop")
	apiAddr := strings.TrimPrefix(api.URL, "https://")
	_, apiPort, _ := net.SplitHostPort(apiAddr)
	flow := `name: mixed
tls: {insecure_skip_verify: true}
vars: {svc: shop}
steps:
  - name: resolve
    dns: {name: api.test, server: "` + kindtest.ServeDNSA(t, "api.test.", "127.0.0.1") + `"}
    expect: [answers.count == 1, ttl == 60s]
    capture: {ip: 'match(answers, "^\\S+")'}
  - name: reach
    icmp: {host: "{{ip}}", count: 2, interval: 10ms}
    expect: [loss == 0]
  - name: cert
    tls: {address: "` + apiAddr + `", verify: false}
    expect: [cert.expires_in > 24h]
    capture: {issuer: cert.issuer}
  - name: redis
    tcp: {address: "` + banner + `", reply: "\\r\\n"}
    capture: {version: 'match(body, "redis-(\\d+)")'}
  - name: health
    grpc: {address: "` + healthAddr + `", service: "{{svc}}"}
    capture: {serving: serving}
  - name: report
    request: {url: "https://{{ip}}:` + apiPort + `/report", query: {v: "{{version}}", issuer: "{{issuer}}", serving: "{{serving}}"}}
    expect: [json.ok, status == 200, cert.expires_in > 24h]
cleanup:
  - name: undo
    request: {method: DELETE, url: "https://{{ip}}:` + apiPort + `/report/{{version}}"}
`
	r := kindtest.Run(t, "", flow, tlskind.Kind{}, tcpkind.Kind{}, dnskind.Kind{}, icmpkind.Kind{}, grpckind.Kind{})
	if s := r.Steps[1]; s.Message() == icmpkind.NotPermitted && os.Getenv("PROBER_TEST_ICMP_SKIP") != "" {
		t.Skipf("%s (PROBER_TEST_ICMP_SKIP is set)", s.Message())
	}
	if !r.OK() {
		t.Fatalf("%s", r.Summary())
	}
	kinds := []string{}
	for _, s := range r.Steps {
		kinds = append(kinds, s.Kind+":"+string(s.Status))
	}
	if strings.Join(kinds, " ") != "dns:passed icmp:passed tls:passed tcp:passed grpc:passed :passed :passed" {
		t.Errorf("steps %v", kinds)
	}
	if len(got) != 2 || !strings.HasPrefix(got[0], "GET /report 7 O=Acme") || !strings.HasSuffix(got[0], " SERVING") || got[1] != "DELETE /report/7   " {
		t.Errorf("requests %q", got)
	}
	if r.Steps[5].Attr("cert.not_after") == "" || r.Steps[2].Attr("cert.not_after") != r.Steps[5].Attr("cert.not_after") {
		t.Errorf("the HTTPS step and the tls step disagree on the certificate: %v vs %v", r.Steps[2].Attrs, r.Steps[5].Attrs)
	}
	// An HTTPS step whose expectations read no cert.* operand still
	// records its certificate's not-after (the expiry metric), and only
	// that; the tcp step made no handshake.
	if a := r.Steps[6].Attrs; len(a) != 1 || a[0].Name != "cert.not_after" || a[0].Value != r.Steps[2].Attr("cert.not_after") {
		t.Errorf("the cleanup's attributes %v, want only the not-after %s", a, r.Steps[2].Attr("cert.not_after"))
	}
	if a := r.Steps[3].Attrs; len(a) != 0 && r.Steps[3].Attr("cert.not_after") != "" {
		t.Errorf("the tcp step has a certificate: %v", a)
	}
}
