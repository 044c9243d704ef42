package shop

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The sandbox serves the shop over HTTPS too, with a certificate it made
// at start-up: signed by its own CA (CAPEM), for the loopback names, and
// expiring DefaultCertValidity (10 days) after start-up unless told
// otherwise: what the demo's certificate check watches.
func TestSandboxHTTPS(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		validity time.Duration
		want     time.Duration
	}{
		{"default", 0, 10 * 24 * time.Hour},
		{"two days", 48 * time.Hour, 48 * time.Hour},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			sb, _ := startSandbox(t, SandboxOptions{CertValidity: c.validity})
			if !strings.HasPrefix(sb.ShopHTTPSURL, "https://127.0.0.1:") || sb.ShopHTTPSURL != "https://"+sb.TLSAddr {
				t.Fatalf("ShopHTTPSURL %q, TLSAddr %q", sb.ShopHTTPSURL, sb.TLSAddr)
			}
			if d := sb.CertNotAfter.Sub(start); d < c.want-time.Second || d > c.want+time.Minute {
				t.Errorf("the certificate expires %s after start-up, want %s", d, c.want)
			}
			roots := x509.NewCertPool()
			if !roots.AppendCertsFromPEM(sb.CAPEM) {
				t.Fatalf("CAPEM holds no certificate: %q", sb.CAPEM)
			}
			for _, name := range []string{"127.0.0.1", "localhost"} {
				cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: name}}}
				resp, err := cl.Get(sb.ShopHTTPSURL + "/healthz")
				if err != nil {
					t.Fatalf("as %s: %v", name, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !strings.Contains(string(body), `"ok"`) {
					t.Errorf("as %s: %d %s", name, resp.StatusCode, body)
				}
				leaf := resp.TLS.PeerCertificates[0]
				if !leaf.NotAfter.Equal(sb.CertNotAfter) || len(resp.TLS.VerifiedChains) == 0 {
					t.Errorf("as %s: leaf not after %s (want %s), verified chains %d", name, leaf.NotAfter, sb.CertNotAfter, len(resp.TLS.VerifiedChains))
				}
				cl.CloseIdleConnections()
			}
			// Without the sandbox's CA, the certificate does not verify.
			cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
			_, err := cl.Get(sb.ShopHTTPSURL + "/healthz")
			if ua := (x509.UnknownAuthorityError{}); !errors.As(err, &ua) {
				t.Errorf("without the CA: %v, want an unknown authority", err)
			}
		})
	}
}
