package kinds_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/prober-dev/prober/internal/kinds/grpckind"
	"github.com/prober-dev/prober/internal/kinds/kindtest"
	"github.com/prober-dev/prober/internal/kinds/tcpkind"
	"github.com/prober-dev/prober/internal/kinds/tlskind"
)

// TestMixedFlow: one flow of tls, tcp, grpc and HTTP steps, values flowing
// from a tcp reply, a certificate and a health check into an HTTP request,
// and an HTTP cleanup.
func TestMixedFlow(t *testing.T) {
	var got []string
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.Path+" "+r.URL.Query().Get("v")+" "+r.URL.Query().Get("issuer")+" "+r.URL.Query().Get("serving"))
		io.WriteString(w, `{"ok": true}`)
	}))
	defer api.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprint(c, "+OK redis-7\r\n")
			c.Close()
		}
	}()
	hs := health.NewServer()
	hs.SetServingStatus("shop", healthgrpc.HealthCheckResponse_SERVING)
	gs := grpc.NewServer()
	healthgrpc.RegisterHealthServer(gs, hs)
	gln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(gln) }()
	defer gs.Stop()
	apiAddr := strings.TrimPrefix(api.URL, "https://")
	flow := `name: mixed
tls: {insecure_skip_verify: true}
vars: {api: "` + api.URL + `", svc: shop}
steps:
  - name: cert
    tls: {address: "` + apiAddr + `", verify: false}
    expect: [cert.expires_in > 24h]
    capture: {issuer: cert.issuer}
  - name: redis
    tcp: {address: "` + ln.Addr().String() + `", reply: "\\r\\n"}
    capture: {version: 'match(body, "redis-(\\d+)")'}
  - name: health
    grpc: {address: "` + gln.Addr().String() + `", service: "{{svc}}"}
    capture: {serving: serving}
  - name: report
    request: {url: "{{api}}/report", query: {v: "{{version}}", issuer: "{{issuer}}", serving: "{{serving}}"}}
    expect: [json.ok, status == 200, cert.expires_in > 24h]
cleanup:
  - name: undo
    request: {method: DELETE, url: "{{api}}/report/{{version}}"}
`
	r := kindtest.Run(t, "", flow, tlskind.Kind{}, tcpkind.Kind{}, grpckind.Kind{})
	if !r.OK() {
		t.Fatalf("%s", r.Summary())
	}
	kinds := []string{}
	for _, s := range r.Steps {
		kinds = append(kinds, s.Kind+":"+string(s.Status))
	}
	if strings.Join(kinds, " ") != "tls:passed tcp:passed grpc:passed :passed :passed" {
		t.Errorf("steps %v", kinds)
	}
	if len(got) != 2 || !strings.HasPrefix(got[0], "GET /report 7 O=Acme") || !strings.HasSuffix(got[0], " SERVING") || got[1] != "DELETE /report/7   " {
		t.Errorf("requests %q", got)
	}
	if r.Steps[3].Attr("cert.not_after") == "" || r.Steps[0].Attr("cert.not_after") != r.Steps[3].Attr("cert.not_after") {
		t.Errorf("the HTTPS step and the tls step disagree on the certificate: %v vs %v", r.Steps[0].Attrs, r.Steps[3].Attrs)
	}
}
