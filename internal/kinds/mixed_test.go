package kinds_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prober-dev/prober/internal/kinds/kindtest"
	"github.com/prober-dev/prober/internal/kinds/tcpkind"
	"github.com/prober-dev/prober/internal/kinds/tlskind"
)

// TestMixedFlow: one flow of tls, tcp and HTTP steps, values flowing from
// a tcp reply and a certificate into an HTTP request, and an HTTP cleanup.
func TestMixedFlow(t *testing.T) {
	var got []string
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.Path+" "+r.URL.Query().Get("v")+" "+r.URL.Query().Get("issuer"))
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
	apiAddr := strings.TrimPrefix(api.URL, "https://")
	flow := `name: mixed
tls: {insecure_skip_verify: true}
vars: {api: "` + api.URL + `"}
steps:
  - name: cert
    tls: {address: "` + apiAddr + `", verify: false}
    expect: [cert.expires_in > 24h]
    capture: {issuer: cert.issuer}
  - name: redis
    tcp: {address: "` + ln.Addr().String() + `", reply: "\\r\\n"}
    capture: {version: 'match(body, "redis-(\\d+)")'}
  - name: report
    request: {url: "{{api}}/report", query: {v: "{{version}}", issuer: "{{issuer}}"}}
    expect: [json.ok, status == 200, cert.expires_in > 24h]
cleanup:
  - name: undo
    request: {method: DELETE, url: "{{api}}/report/{{version}}"}
`
	r := kindtest.Run(t, "", flow, tlskind.Kind{}, tcpkind.Kind{})
	if !r.OK() {
		t.Fatalf("%s", r.Summary())
	}
	kinds := []string{}
	for _, s := range r.Steps {
		kinds = append(kinds, s.Kind+":"+string(s.Status))
	}
	if strings.Join(kinds, " ") != "tls:passed tcp:passed :passed :passed" {
		t.Errorf("steps %v", kinds)
	}
	if len(got) != 2 || !strings.HasPrefix(got[0], "GET /report 7 O=Acme") || got[1] != "DELETE /report/7  " {
		t.Errorf("requests %q", got)
	}
	if r.Steps[2].Attr("cert.not_after") == "" || r.Steps[0].Attr("cert.not_after") != r.Steps[2].Attr("cert.not_after") {
		t.Errorf("the HTTPS step and the tls step disagree on the certificate: %v vs %v", r.Steps[0].Attrs, r.Steps[2].Attrs)
	}
	// An HTTPS step whose expectations read no cert.* operand still
	// records its certificate's not-after (the expiry metric), and only
	// that; the tcp step made no handshake.
	if a := r.Steps[3].Attrs; len(a) != 1 || a[0].Name != "cert.not_after" || a[0].Value != r.Steps[0].Attr("cert.not_after") {
		t.Errorf("the cleanup's attributes %v, want only the not-after %s", a, r.Steps[0].Attr("cert.not_after"))
	}
	if a := r.Steps[1].Attrs; len(a) != 0 && r.Steps[1].Attr("cert.not_after") != "" {
		t.Errorf("the tcp step has a certificate: %v", a)
	}
}
