package runner_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/kinds/kindtest"
	"github.com/prober-dev/prober/internal/report"
	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/runlog"
	"github.com/prober-dev/prober/internal/runner"
)

// A server that requires a client certificate signed by its CA: a flow with
// tls.client_cert passes; one without fails with class tls (the server's
// "certificate required" alert, read by the client after the handshake).
func TestClientCertificate(t *testing.T) {
	ca := kindtest.NewCA(t)
	srv := kindtest.ServeMTLS(t, ca, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"cn": %q}`, r.TLS.PeerCertificates[0].Subject.CommonName)
	}))

	dir := t.TempDir()
	cert, key := kindtest.PEM(t, ca.Leaf(t, "prober-client", time.Now().Add(time.Hour)))
	stranger, strangerKey := kindtest.PEM(t, kindtest.NewCA(t).Leaf(t, "stranger", time.Now().Add(time.Hour)))
	for name, b := range map[string][]byte{"ca.pem": ca.PEM, "c.pem": cert, "c-key.pem": key, "s.pem": stranger, "s-key.pem": strangerKey} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	step := "steps:\n  - name: get\n    request: {url: \"" + srv.URL + "/\"}\n    expect: ['json.cn == \"prober-client\"']\n"
	for _, tc := range []struct {
		name, tls string
		class     result.Class
	}{
		{"with the certificate", "tls: {ca_file: ca.pem, client_cert: c.pem, client_key: c-key.pem}\n", result.OK},
		{"without", "tls: {ca_file: ca.pem}\n", result.TLS},
		{"from another CA", "tls: {ca_file: ca.pem, client_cert: s.pem, client_key: s-key.pem}\n", result.TLS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := kindtest.Run(t, dir, "name: f\n"+tc.tls+step)
			s := r.Steps[0]
			if s.Class != tc.class {
				t.Fatalf("class %s, want %s (%s)", s.Class, tc.class, s.Message())
			}
			if tc.class == result.TLS && !strings.Contains(s.Message(), "tls: ") {
				t.Errorf("message %q does not say tls", s.Message())
			}
			t.Logf("%s: %s %s", tc.name, s.Class, s.Message())
		})
	}
}

// mtlsLoad loads flow f.yaml with probes.yaml's secrets given through env;
// files are beside the flow, and abs are absolute paths (secret files).
func mtlsLoad(secrets string, env map[string]string, files map[string][]byte, abs map[string][]byte, flow string) (*config.Config, error) {
	fsys := fstest.MapFS{
		"probes.yaml":  {Data: []byte("flows: [flows/f.yaml]\nsecrets:\n" + secrets)},
		"flows/f.yaml": {Data: []byte(flow)},
	}
	for name, b := range files {
		fsys["flows/"+name] = &fstest.MapFile{Data: b}
	}
	return config.Load(fsys, "probes.yaml", config.Options{
		Env: func(name string) (string, bool) { v, ok := env[name]; return v, ok },
		ReadFile: func(p string) ([]byte, error) {
			if b, ok := abs[p]; ok {
				return b, nil
			}
			return nil, fs.ErrNotExist
		},
	})
}

// TestClientCertificateFromSecrets: tls.client_cert and client_key as
// {{secret:NAME}}, at flow level and per step, from env and from a secret
// file: the server that requires the certificate accepts it.
func TestClientCertificateFromSecrets(t *testing.T) {
	ca := kindtest.NewCA(t)
	srv := kindtest.ServeMTLS(t, ca, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"cn": %q}`, r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	cert, key := kindtest.PEM(t, ca.Leaf(t, "prober-client", time.Now().Add(time.Hour)))
	files := map[string][]byte{"ca.pem": ca.PEM, "c.pem": cert}
	env := map[string]string{"MTLS_KEY": string(key), "MTLS_CERT": string(cert)}
	abs := map[string][]byte{"/run/secrets/mtls_key": key} // its trailing newline is trimmed, as every secret file's
	secrets := "  MTLS_KEY: {env: MTLS_KEY}\n  MTLS_CERT: {env: MTLS_CERT}\n  KEY_FILE: {file: /run/secrets/mtls_key}\n"
	get := "    request: {url: \"" + srv.URL + "/\"%s}\n    expect: ['json.cn == \"prober-client\"']\n"
	for _, tc := range []struct{ name, flow string }{
		{"flow: cert file, key secret", "name: f\ntls: {ca_file: ca.pem, client_cert: c.pem, client_key: \"{{secret:MTLS_KEY}}\"}\nsteps:\n  - name: get\n" + fmt.Sprintf(get, "")},
		{"flow: both secrets", "name: f\ntls: {ca_file: ca.pem, client_cert: \"{{ secret:MTLS_CERT }}\", client_key: \"{{secret:MTLS_KEY}}\"}\nsteps:\n  - name: get\n" + fmt.Sprintf(get, "")},
		{"step: key from a secret file", "name: f\nsteps:\n  - name: get\n" + fmt.Sprintf(get, `, tls: {ca_file: ca.pem, client_cert: c.pem, client_key: "{{secret:KEY_FILE}}"}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := mtlsLoad(secrets, env, files, abs, tc.flow)
			if err != nil {
				t.Fatal(err)
			}
			f, err := runner.New(cfg.Flows[0], runner.Options{Secrets: cfg.Secrets})
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			r := f.Run(context.Background(), time.Time{})
			if !r.OK() {
				t.Fatalf("the server refused the certificate from the secret: %s", r.Summary())
			}
		})
	}
}

// keyMaterial are the texts a client key can show as: its PEM's lines, its
// DER in base64 (each alignment, both alphabets) and hex.
func keyMaterial(keyPEM []byte) []string {
	var out []string
	for _, l := range strings.Split(string(keyPEM), "\n") {
		if !strings.HasPrefix(l, "-----") && len(l) >= 16 {
			out = append(out, l)
		}
	}
	if b, _ := pem.Decode(keyPEM); b != nil {
		for a := range 3 {
			out = append(out, base64.StdEncoding.EncodeToString(b.Bytes[a:]), base64.URLEncoding.EncodeToString(b.Bytes[a:]))
		}
		out = append(out, hex.EncodeToString(b.Bytes), strings.ToUpper(hex.EncodeToString(b.Bytes)))
	}
	return out
}

// leak returns the first 16 bytes of a material found in out, or "".
func leak(out string, material []string) string {
	const w = 16
	for _, m := range material {
		for i := 0; i+w <= len(m); i++ {
			if strings.Contains(out, m[i:i+w]) {
				return m[i : i+w]
			}
		}
	}
	return ""
}

// TestClientKeyNeverShown: random keys (ECDSA, Ed25519) given as a secret
// or a file, well-formed or broken (cut at a random byte, a base64
// character changed, armour stripped, in hex, swapped with the
// certificate, another certificate's): nothing of 16 bytes of the key, as
// PEM, base64 or hex, shows in the load's errors (what validate prints) or
// in a run's text, JSON and log line.
func TestClientKeyNeverShown(t *testing.T) {
	ca := kindtest.NewCA(t)
	srv := kindtest.ServeMTLS(t, ca, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"ok": true}`)
	}))
	rng := rand.New(rand.NewPCG(15, 2))
	for i := range 12 {
		leaf := ca.Leaf(t, "prober-client", time.Now().Add(time.Hour))
		if i%2 == 1 {
			_, k, _ := ed25519.GenerateKey(nil)
			leaf = ca.LeafFor(t, k, "prober-client", time.Now().Add(time.Hour))
		}
		cert, key := kindtest.PEM(t, leaf)
		_, otherKey := kindtest.PEM(t, ca.Leaf(t, "other", time.Now().Add(time.Hour)))
		material := keyMaterial(key)
		block, _ := pem.Decode(key)
		flip := []byte(string(key))
		at := len("-----BEGIN PRIVATE KEY-----\n") + rng.IntN(len(block.Bytes))
		flip[at] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[rng.IntN(64)]
		for _, tc := range []struct {
			name      string
			cert, key string
			load      string // ok, error, or either (a changed byte of the public key the private one implies passes)
		}{
			{"good", string(cert), string(key), "ok"},
			{"cut", string(cert), string(key[:rng.IntN(len(key)-30)]), "error"},
			{"a character changed", string(cert), string(flip), "either"},
			{"no armour", string(cert), base64.StdEncoding.EncodeToString(block.Bytes), "error"},
			{"hex", string(cert), hex.EncodeToString(block.Bytes), "error"},
			{"swapped", string(key), string(cert), "error"},
			{"another's key", string(cert), string(otherKey), "error"},
		} {
			if tc.name == "a character changed" && string(flip) == string(key) {
				continue
			}
			for _, from := range []string{"secret", "file"} {
				env := map[string]string{"K": tc.key, "C": tc.cert}
				files := map[string][]byte{"ca.pem": ca.PEM, "c.pem": []byte(tc.cert), "k.pem": []byte(tc.key)}
				tlsBlock := `tls: {ca_file: ca.pem, client_cert: "{{secret:C}}", client_key: "{{secret:K}}"}`
				if from == "file" {
					tlsBlock = "tls: {ca_file: ca.pem, client_cert: c.pem, client_key: k.pem}"
				}
				flow := "name: f\n" + tlsBlock + "\nsteps:\n  - name: get\n    request: {url: \"" + srv.URL + "/\"}\n    expect: [json.ok == false]\n"
				cfg, err := mtlsLoad("  K: {env: K}\n  C: {env: C}\n", env, files, nil, flow)
				var outs []string
				if err != nil {
					outs = append(outs, err.Error())
				} else {
					f, err := runner.New(cfg.Flows[0], runner.Options{Secrets: cfg.Secrets})
					if err != nil {
						t.Fatal(err)
					}
					r := f.Run(context.Background(), time.Time{})
					f.Close()
					if r.Steps[0].HTTPStatus != 200 && tc.load == "ok" {
						t.Errorf("%d %s from %s: the server refused the certificate: %s", i, tc.name, from, r.Summary())
					}
					var text, logs bytes.Buffer
					report.Text(&text, r)
					runlog.New(slog.New(slog.NewJSONHandler(&logs, nil))).Observe(r)
					js, _ := json.Marshal(r)
					outs = append(outs, text.String(), logs.String(), string(js), r.Summary())
				}
				if tc.load != "either" && (err == nil) != (tc.load == "ok") {
					t.Errorf("%d %s from %s: load error %v, want %s", i, tc.name, from, err, tc.load)
				}
				for _, out := range outs {
					if l := leak(out, material); l != "" {
						t.Fatalf("%d %s from %s: %q of the key shows in:\n%s", i, tc.name, from, l, out)
					}
				}
				if i == 0 && from == "secret" && err != nil {
					t.Logf("%s: %s", tc.name, strings.Join(outs, " | "))
				}
			}
		}
	}
}
