package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/prober-dev/prober/internal/shop"
)

const webPassword = "Web-Ui-Pw-4Zt8-NeverShown"

// webConfigDir writes server.crt, server.key (self-signed for 127.0.0.1) and
// web-config.yml (TLS, user ops with webPassword) and returns the file's
// path and a pool trusting the certificate.
func webConfigDir(t *testing.T) (string, *x509.CertPool) {
	t.Helper()
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "prober test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(webPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	files := map[string][]byte{
		"server.crt":     certPEM,
		"server.key":     pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
		"web-config.yml": []byte("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  ops: " + string(hash) + "\n"),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return filepath.Join(dir, "web-config.yml"), pool
}

// A web config that cannot be used stops run (and validate) at start with
// exit 2 and one clear line, before any flow runs; a good one is reported
// by validate.
func TestWebConfigFlag(t *testing.T) {
	t.Setenv("SHOP_PASSWORD", password)
	good := writeFiles(t, map[string]string{"probes.yaml": goodProbes, "flows/checkout.yaml": goodFlow})
	probes := filepath.Join(good, "probes.yaml")
	webCfg, _ := webConfigDir(t)
	bad := writeFiles(t, map[string]string{
		// A plain password where a bcrypt hash belongs: refused, not shown.
		"plain.yml":   "basic_auth_users:\n  ops: " + password + "\n",
		"typo.yml":    "tls_server_confg:\n  cert_file: x.crt\n",
		"nocert.yml":  "tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n",
		"notyaml.yml": "basic_auth_users: [\n",
	})
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr []string
	}{
		{"run, file missing", []string{"run", "--config", probes, "--web.config.file", filepath.Join(bad, "none.yml")}, 2, "",
			[]string{"web config: open ", "none.yml: no such file"}},
		{"run, plain password", []string{"run", "--config", probes, "--web.config.file", filepath.Join(bad, "plain.yml")}, 2, "",
			[]string{"plain.yml", `basic_auth_users: "ops": not a bcrypt hash`, "htpasswd -nbBC 10"}},
		{"run, unknown field", []string{"run", "--config", probes, "--web.config.file", filepath.Join(bad, "typo.yml")}, 2, "",
			[]string{"typo.yml", "tls_server_confg"}},
		{"run, certificate missing", []string{"run", "--config", probes, "--web.config.file", filepath.Join(bad, "nocert.yml")}, 2, "",
			[]string{"missing.crt"}},
		{"run, not YAML", []string{"run", "--config", probes, "--web.config.file", filepath.Join(bad, "notyaml.yml")}, 2, "",
			[]string{"notyaml.yml"}},
		{"validate, plain password", []string{"validate", "--config", probes, "--web.config.file", filepath.Join(bad, "plain.yml")}, 2, "",
			[]string{"not a bcrypt hash"}},
		{"validate, good web config", []string{"validate", "--config", probes, "--web.config.file", webCfg}, 0,
			webCfg + ": ok: TLS, 1 basic auth user(s)", nil},
		{"run -h names the flag", []string{"run", "-h"}, 0, "", []string{"-web.config.file", "TLS and basic auth"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := invoke(tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout, stderr)
			}
			if tc.stdout != "" && !strings.Contains(stdout, tc.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tc.stdout, stdout)
			}
			if tc.code == 2 && stdout != "" {
				t.Errorf("a refused start wrote to stdout (ran something?):\n%s", stdout)
			}
			for _, s := range tc.stderr {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr)
				}
			}
			if tc.code == 2 && strings.Count(strings.TrimSpace(stderr), "\n") > 1 {
				t.Errorf("want one clear line (two for a YAML field error), got:\n%s", stderr)
			}
			if strings.Contains(stdout+stderr, password) {
				t.Errorf("output holds the password:\n%s\n%s", stdout, stderr)
			}
		})
	}
}

// The daemon with --web.config.file: it serves over TLS, every endpoint
// behind basic auth, probes as usual and stops cleanly on SIGTERM.
func TestRunWithWebConfig(t *testing.T) {
	sb, err := shop.StartSandbox(context.Background(), shop.SandboxOptions{Password: password})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		sb.Close(ctx)
	})
	t.Setenv("SHOP_URL", sb.ShopURL)
	t.Setenv("SHOP_PASSWORD", password)
	webCfg, pool := webConfigDir(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"run", "--config", checkoutOnStart(t), "--listen", addr, "--shutdown-grace", "10s",
			"--state-dir", t.TempDir(), "--web.config.file", webCfg}, stdout, stderr)
	}()
	client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	get := func(path string, auth bool) (int, error) {
		req, _ := http.NewRequest("GET", "https://"+addr+path, nil)
		if auth {
			req.SetBasicAuth("ops", webPassword)
		}
		res, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		res.Body.Close()
		return res.StatusCode, nil
	}
	up := false
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && !up; time.Sleep(20 * time.Millisecond) {
		select {
		case code := <-done:
			t.Fatalf("run exited early with %d:\n%s\n%s", code, stdout.String(), stderr.String())
		default:
		}
		code, err := get("/healthz", true)
		up = err == nil && code == 200
	}
	if !up {
		t.Fatalf("the daemon did not answer https://%s/healthz with credentials:\n%s", addr, stdout.String())
	}
	for _, path := range []string{"/", "/metrics", "/api/v1/results", "/healthz", "/readyz"} {
		if code, err := get(path, false); err != nil || code != 401 {
			t.Errorf("GET %s without credentials: %d %v, want 401", path, code, err)
		}
	}
	for _, path := range []string{"/", "/metrics", "/api/v1/results"} {
		if code, err := get(path, true); err != nil || code != 200 {
			t.Errorf("GET %s with credentials: %d %v, want 200", path, code, err)
		}
	}
	if res, err := (&http.Client{Timeout: 15 * time.Second}).Get("http://" + addr + "/metrics"); err == nil {
		res.Body.Close()
		if res.StatusCode == 200 {
			t.Error("plain HTTP served /metrics")
		}
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(stdout.String(), `"msg":"run","flow":"checkout"`); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no checkout run logged:\n%s", stdout.String())
		}
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after SIGTERM, want 0\n%s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return within 20s of SIGTERM")
	}
	out := stdout.String()
	if !strings.Contains(out, `"msg":"listening"`) || !strings.Contains(out, `"tls":true,"basic_auth":true`) {
		t.Errorf("the listening line does not say TLS and basic auth are on:\n%s", out)
	}
	if strings.Contains(out+stderr.String(), webPassword) || strings.Contains(out+stderr.String(), password) {
		t.Error("the daemon's output holds a password")
	}
}
