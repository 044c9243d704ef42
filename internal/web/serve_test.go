package web

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key into
// dir as server.crt and server.key, and returns a pool trusting it.
func selfSigned(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "prober test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	writeFile(t, filepath.Join(dir, "server.crt"), string(certPEM))
	writeFile(t, filepath.Join(dir, "server.key"), string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return pool
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func bcryptHash(t *testing.T, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost) // the cost only slows the test
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

const testUserPassword = "Web-Pw-9kQ2-NeverShown" // distinctive, so that a leak is found by search

// The web surface over TLS with basic auth, configured by a Prometheus web
// configuration file, served by Serve on a real loopback listener with the
// real handler: every path needs the credentials (health included), plain
// HTTP gets no answer but an error, and the CSRF checks still apply to an
// authenticated browser.
func TestServeTLSAndBasicAuth(t *testing.T) {
	dir := t.TempDir()
	pool := selfSigned(t, dir)
	cfgPath := filepath.Join(dir, "web-config.yml")
	// Relative cert and key paths are relative to the file, as in Prometheus.
	writeFile(t, cfgPath, "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"+
		"basic_auth_users:\n  ops: "+bcryptHash(t, testUserPassword)+"\n")

	wc, err := LoadWebConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if !wc.TLS || len(wc.Users) != 1 || wc.Users[0] != "ops" {
		t.Fatalf("LoadWebConfig = %+v, want TLS and user ops", wc)
	}

	alerts := &fakeAlerts{}
	base, logs := serveWith(t, cfgPath, newHandler(func(o *Options) { o.Alerts = alerts }))
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	get := func(path, user, pass string) (int, http.Header) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode, res.Header
	}
	for _, path := range []string{"/", "/api/v1/results", "/api/v1/alerts", "/metrics", "/healthz", "/readyz"} {
		if code, h := get(path, "", ""); code != 401 || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic") {
			t.Errorf("GET %s without credentials: %d (WWW-Authenticate %q), want 401 Basic", path, code, h.Get("WWW-Authenticate"))
		}
		if code, _ := get(path, "ops", "wrong"); code != 401 {
			t.Errorf("GET %s with a wrong password: %d, want 401", path, code)
		}
		if code, _ := get(path, "nobody", testUserPassword); code != 401 {
			t.Errorf("GET %s as an unknown user: %d, want 401", path, code)
		}
		if code, _ := get(path, "ops", testUserPassword); code != 200 {
			t.Errorf("GET %s with the right credentials: %d, want 200", path, code)
		}
	}

	// Plain HTTP on the TLS port is not served.
	if res, err := (&http.Client{Timeout: 30 * time.Second}).Get(strings.Replace(base, "https://", "http://", 1) + "/"); err == nil {
		res.Body.Close()
		if res.StatusCode == 200 {
			t.Error("plain HTTP to the TLS port answered 200")
		}
	}
	// A client that does not trust the certificate fails the handshake.
	if res, err := (&http.Client{Timeout: 30 * time.Second}).Get(base + "/"); err == nil {
		res.Body.Close()
		t.Error("a client without the CA completed a TLS request")
	}

	// Authentication does not replace the CSRF checks: a browser holding the
	// credentials sends them with a cross-site form too.
	post := func(ctype, origin string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", base+"/api/v1/silences", strings.NewReader(silenceJSON))
		req.SetBasicAuth("ops", testUserPassword)
		req.Header.Set("Content-Type", ctype)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := post("text/plain", "http://evil.example"); code != 403 {
		t.Errorf("authenticated cross-site form POST: %d, want 403", code)
	}
	if code := post("application/json", base); code != 201 {
		t.Errorf("authenticated same-origin JSON POST: %d, want 201", code)
	}

	// Reload: the file is read again on every request. A user added is let
	// in without a restart; a file broken while running fails closed (500),
	// it does not serve without authentication.
	writeFile(t, cfgPath, "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"+
		"basic_auth_users:\n  ops: "+bcryptHash(t, testUserPassword)+"\n  viewer: "+bcryptHash(t, "viewer-Pw-2")+"\n")
	if code, _ := get("/", "viewer", "viewer-Pw-2"); code != 200 {
		t.Errorf("a user added to the file while running: %d, want 200", code)
	}
	writeFile(t, cfgPath, "basic_auth_users: [this is not a map\n")
	if code, _ := get("/", "ops", testUserPassword); code != 500 {
		t.Errorf("with the file broken while running: %d, want 500", code)
	}
	if code, _ := get("/api/v1/results", "", ""); code != 500 {
		t.Errorf("with the file broken while running, no credentials: %d, want 500", code)
	}
	if l := logs.String(); !strings.Contains(l, `"level":"ERROR"`) || !strings.Contains(l, "Unable to parse configuration") {
		t.Errorf("the broken file is not logged as an error:\n%s", l)
	}
	if l := logs.String(); strings.Contains(l, "Listening on") {
		t.Errorf("the toolkit's info lines are logged (the daemon logs listening itself):\n%s", l)
	}
	if strings.Contains(logs.String(), testUserPassword) {
		t.Error("the log holds the password")
	}
}

// With no file, Serve is plain HTTP without authentication, as before.
func TestServeWithoutWebConfig(t *testing.T) {
	base, _ := serveWith(t, "", newHandler())
	res, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(base, "http://") {
		t.Errorf("GET %s/healthz: %d, want 200 over plain HTTP", base, res.StatusCode)
	}
}

// serveWith serves h with Serve on a loopback port and returns its base URL
// (https when the file turns TLS on) and the server's log.
func serveWith(t *testing.T, cfgPath string, h http.Handler) (string, *lockedBuilder) {
	t.Helper()
	wc, err := LoadWebConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuilder{}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}
	done := make(chan error, 1)
	go func() { done <- Serve(ln, srv, cfgPath, slog.New(slog.NewJSONHandler(logs, nil))) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	scheme := "http://"
	if wc.TLS {
		scheme = "https://"
	}
	return scheme + ln.Addr().String(), logs
}

func TestLoadWebConfig(t *testing.T) {
	dir := t.TempDir()
	selfSigned(t, dir)
	hash := bcryptHash(t, testUserPassword)
	tests := []struct {
		name    string
		content string // "" with noFile: no file at all
		noFile  bool
		tls     bool
		users   []string
		errPart []string
	}{
		{name: "TLS only", content: "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n", tls: true},
		{name: "basic auth only", content: "basic_auth_users:\n  b: " + hash + "\n  a: " + hash + "\n", users: []string{"a", "b"}},
		{name: "TLS options without a certificate stay plain HTTP", content: "tls_server_config:\n  min_version: TLS13\n"},
		{name: "empty file", content: ""},
		{name: "missing file", noFile: true, errPart: []string{"no such file"}},
		{name: "unknown field", content: "tls_server_confg:\n  cert_file: server.crt\n", errPart: []string{"tls_server_confg"}},
		{name: "not YAML", content: "basic_auth_users: [\n", errPart: []string{"web config"}},
		{name: "plain password instead of a hash", content: "basic_auth_users:\n  ops: " + testUserPassword + "\n",
			errPart: []string{`"ops": not a bcrypt hash`, "htpasswd"}},
		{name: "certificate file missing", content: "tls_server_config:\n  cert_file: nope.crt\n  key_file: server.key\n", errPart: []string{"nope.crt"}},
		{name: "key missing", content: "tls_server_config:\n  cert_file: server.crt\n", errPart: []string{"key"}},
		{name: "key does not match", content: "tls_server_config:\n  cert_file: server.crt\n  key_file: server.crt\n", errPart: []string{"X509KeyPair"}},
		{name: "header that cannot be set", content: "http_server_config:\n  headers:\n    Server: x\n", errPart: []string{"Server"}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "web-"+string(rune('a'+i))+".yml")
			if !tc.noFile {
				writeFile(t, path, tc.content)
			}
			wc, err := LoadWebConfig(path)
			if len(tc.errPart) > 0 {
				if err == nil {
					t.Fatalf("no error, want one containing %q", tc.errPart)
				}
				for _, p := range append(tc.errPart, path) {
					if !strings.Contains(err.Error(), p) {
						t.Errorf("error %q lacks %q", err, p)
					}
				}
				if strings.Contains(err.Error(), testUserPassword) || strings.Contains(err.Error(), testUserPassword[:1]+"'") {
					t.Errorf("error %q shows the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if wc.TLS != tc.tls || strings.Join(wc.Users, ",") != strings.Join(tc.users, ",") {
				t.Errorf("= %+v, want TLS %v users %v", wc, tc.tls, tc.users)
			}
		})
	}
	if wc, err := LoadWebConfig(""); err != nil || wc.TLS || len(wc.Users) > 0 {
		t.Errorf(`LoadWebConfig("") = %+v, %v; want plain HTTP, no error`, wc, err)
	}
}

// lockedBuilder is a log destination safe for the server's goroutines.
type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
