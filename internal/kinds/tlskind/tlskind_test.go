package tlskind_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/kinds/kindtest"
	"github.com/prober-dev/prober/internal/kinds/tlskind"
	"github.com/prober-dev/prober/internal/result"
)

// serve starts a loopback TLS server presenting cert; it returns the address.
func serve(t *testing.T, cert tls.Certificate) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.(*tls.Conn).Handshake()
				_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
				_, _ = c.Read(make([]byte, 1)) // until the client closes
			}()
		}
	}()
	return ln.Addr().String()
}

func flow(block, expect string) string {
	return fmt.Sprintf("name: f\nsteps:\n  - name: cert\n    tls: %s\n    expect: %s\n", block, expect)
}

func TestTLSKind(t *testing.T) {
	dir := t.TempDir()
	c := kindtest.NewCA(t)
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), c.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	good := serve(t, c.Leaf(t, "shop", now.Add(30*24*time.Hour), "127.0.0.1", "shop.test"))
	expiring := serve(t, c.Leaf(t, "shop", now.Add(48*time.Hour), "127.0.0.1"))
	expired := serve(t, c.Leaf(t, "shop", now.Add(-time.Hour), "127.0.0.1"))
	wrongHost := serve(t, c.Leaf(t, "s3cr3t-value", now.Add(30*24*time.Hour), "other.test"))
	selfSigned := serve(t, (*kindtest.CA)(nil).Leaf(t, "self", now.Add(30*24*time.Hour), "127.0.0.1"))
	closed := func() string {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		defer ln.Close()
		return ln.Addr().String()
	}()

	for _, tc := range []struct {
		name, block, expect string
		class               result.Class
		msg                 string            // in the first failure
		attrs               map[string]string // a substring of each
	}{
		{"good", `{address: "` + good + `", ca_file: ca.pem}`,
			`[cert.expires_in > 600h, tls.verified, 'cert.issuer contains "Test CA"', 'cert.sans contains "shop.test"', 'tls.version == "TLS 1.3"', 'tls.verify_error == ""', 'cert.subject == "CN=shop"']`,
			result.OK, "", map[string]string{"cert.not_after": now.Add(30 * 24 * time.Hour).UTC().Format("2006-01-02"), "tls.version": "TLS 1.3", "tls.verified": "true", "cert.sans": "shop.test, 127.0.0.1"}},
		{"expiring", `{address: "` + expiring + `", ca_file: ca.pem}`, `cert.expires_in > 336h`,
			result.Assertion, "cert.expires_in > 336h: got 4", nil},
		{"expired", `{address: "` + expired + `", ca_file: ca.pem}`, `cert.expires_in > 0s`,
			result.TLS, "tls: x509: certificate has expired", map[string]string{"tls.verified": "false", "tls.verify_error": "expired"}},
		{"expired unverified", `{address: "` + expired + `", ca_file: ca.pem, verify: false}`, `cert.expires_in > 0s`,
			result.Assertion, "cert.expires_in > 0s: got -", nil},
		{"wrong host", `{address: "` + strings.Replace(wrongHost, "127.0.0.1", "localhost", 1) + `", ca_file: ca.pem}`, `[]`,
			result.TLS, "certificate is valid for other.test, not localhost", map[string]string{"cert.subject": "CN=[secret:S]"}},
		{"server name", `{address: "` + wrongHost + `", ca_file: ca.pem, server_name: other.test}`, `tls.verified`,
			result.OK, "", nil},
		{"self-signed", `{address: "` + selfSigned + `"}`, `[]`,
			result.TLS, "unknown authority", nil},
		{"empty ca_file: the system's roots", `{address: "` + good + `", ca_file: ""}`, `[]`,
			result.TLS, "unknown authority", nil},
		{"ca_file from an unset variable", `{address: "` + good + `", ca_file: "${env:PROBER_TEST_UNSET_CA:-}"}`, `[]`,
			result.TLS, "unknown authority", nil},
		{"self-signed, watched", `{address: "` + selfSigned + `", verify: false}`, `['!tls.verified', 'tls.verify_error contains "unknown authority"', cert.expires_in > 600h]`,
			result.OK, "", nil},
		{"refused", `{address: "` + closed + `"}`, `[]`, result.ConnectRefused, "connection refused", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := kindtest.Run(t, dir, flow(tc.block, tc.expect), tlskind.Kind{})
			s := r.Steps[0]
			if s.Class != tc.class {
				t.Fatalf("class %s, want %s (%v)", s.Class, tc.class, s.Failures)
			}
			if tc.msg != "" && !strings.Contains(s.Message(), tc.msg) {
				t.Errorf("message %q, want it to contain %q", s.Message(), tc.msg)
			}
			if s.Kind != "tls" || s.Method != "TLS" || !strings.HasPrefix(s.URL, "tls://") {
				t.Errorf("kind %q method %q url %q", s.Kind, s.Method, s.URL)
			}
			for k, v := range tc.attrs {
				if got := s.Attr(k); !strings.Contains(got, v) {
					t.Errorf("attr %s = %q, want it to contain %q", k, got, v)
				}
			}
			for _, a := range s.Attrs {
				if strings.Contains(a.Value, "s3cr3t-value") {
					t.Errorf("attr %s leaks the secret: %q", a.Name, a.Value)
				}
			}
			for _, f := range s.Failures {
				if strings.Contains(f.Message, "s3cr3t-value") {
					t.Errorf("failure leaks the secret: %q", f.Message)
				}
			}
			if tc.class == result.OK && s.Timings.TLS <= 0 {
				t.Errorf("no TLS timing: %+v", s.Timings)
			}
		})
	}
}

func TestTLSKindConfig(t *testing.T) {
	dir := t.TempDir()
	cert, _ := kindtest.PEM(t, kindtest.NewCA(t).Leaf(t, "prober", time.Now().Add(time.Hour)))
	if err := os.WriteFile(filepath.Join(dir, "c.pem"), cert, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ flow, want string }{
		{flow(`{server_name: x}`, `[]`), "f.yaml:4:10: tls needs an address"},
		{flow(`{address: "a:1", adress: x}`, `[]`), `f.yaml:4:27: unknown field "adress"`},
		{flow(`{address: "a:1"}`, `status == 200`), "f.yaml:5:13: tls steps cannot read that: their operands are duration, cert.chain_expires_in"},
		{flow(`{address: "a:1"}`, `cert.expires_in > 14`), "f.yaml:5:31: "},
		{flow(`{address: "a:1", ca_file: nope.pem}`, `[]`), "f.yaml:4:36: ca_file: "},
		{flow(`{address: "a:1", client_cert: c.PEM}`, `[]`), "client_cert and client_key go together"},
		{flow(`{address: "a:1", client_cert: c.pem, client_key: "{{secret:NOPE}}"}`, `[]`), `undefined secret "NOPE" (declare it under secrets: in probes.yaml)`},
		{flow(`{address: "a:1", client_cert: c.pem, client_key: "k-{{secret:S}}"}`, `[]`), `client_key is a file path or one {{secret:NAME}}`},
		{flow(`{address: "a:1", client_cert: c.pem, client_key: "{{secret:S}}"}`, `[]`), `client_cert and client_key: tls: failed to find any PEM data in key input`},
		{"name: f\nsteps:\n  - name: a\n    tls: {address: \"a:1\"}\n    request: {url: \"http://a/\"}\n", "a step is one of request or tls (request is already set)"},
		{flow(`{address: "{{nope}}:1"}`, `[]`), `undefined variable "nope"`},
	} {
		_, err := kindtest.Load(t, dir, tc.flow, tlskind.Kind{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("flow:\n%s\nerr %v\nwant %q", tc.flow, err, tc.want)
		}
	}
}

// TestHTTPSCertOperands: an HTTPS step reads its own connection's
// certificate with the tls kind's operands, without a tls step; a step
// that does not read them records only the not-after (the expiry metric's).
func TestHTTPSCertOperands(t *testing.T) {
	dir := t.TempDir()
	c := kindtest.NewCA(t)
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), c.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{c.Leaf(t, "shop", time.Now().Add(48*time.Hour), "127.0.0.1")}}
	srv.StartTLS()
	defer srv.Close()
	for _, tc := range []struct {
		name, tlsOpts, expect string
		class                 result.Class
		msg                   string
		attrs                 bool
	}{
		{"verified", "{ca_file: ca.pem}", `['cert.issuer contains "Test CA"', tls.verified, cert.expires_in > 24h, 'tls.version == "TLS 1.3"']`, result.OK, "", true},
		{"expiring", "{ca_file: ca.pem}", `[status == 200, cert.expires_in > 336h]`, result.Assertion, "cert.expires_in > 336h: got 4", true},
		{"insecure", "{insecure_skip_verify: true}", `['!tls.verified', 'tls.verify_error contains "insecure_skip_verify"']`, result.OK, "", true},
		{"not read", "{ca_file: ca.pem}", `status == 200`, result.OK, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := kindtest.Run(t, dir, "name: f\ntls: "+tc.tlsOpts+"\nsteps:\n  - name: home\n    request: {url: \""+srv.URL+"/\"}\n    expect: "+tc.expect+"\n", tlskind.Kind{})
			s := r.Steps[0]
			if s.Class != tc.class || !strings.Contains(s.Message(), tc.msg) {
				t.Fatalf("class %s message %q, want %s %q", s.Class, s.Message(), tc.class, tc.msg)
			}
			if got := s.Attr("cert.subject") == "CN=shop"; got != tc.attrs || s.Kind != "" {
				t.Errorf("kind %q attrs %v, want recorded: %v", s.Kind, s.Attrs, tc.attrs)
			}
			na, _ := time.Parse(time.RFC3339, s.Attr("cert.not_after"))
			if d := time.Until(na); !tc.attrs && (len(s.Attrs) != 1 || d < 47*time.Hour || d > 48*time.Hour) {
				t.Errorf("attrs %v, want only cert.not_after, in two days", s.Attrs)
			}
		})
	}
}
