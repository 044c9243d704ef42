package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// selfSigned returns a certificate and its key as PEM.
func selfSigned(t *testing.T) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}))
}

func TestClientCertificate(t *testing.T) {
	cert, key := selfSigned(t)
	_, other := selfSigned(t)
	step := "steps:\n  - name: s\n    request: {url: \"https://x/\"}\n"
	files := func(probes string, flows map[string]string) map[string]string {
		m := map[string]string{"probes.yaml": probes, "c.pem": cert, "c-key.pem": key, "other-key.pem": other}
		for n, f := range flows {
			m[n] = f
		}
		return m
	}
	t.Run("flow", func(t *testing.T) {
		cfg, errs := loadFiles(t, files("flows: [a.yaml]\n", map[string]string{
			"a.yaml": "name: a\ntls: {client_cert: c.pem, client_key: c-key.pem}\n" + step}))
		if errs != nil {
			t.Fatal(errs)
		}
		h := cfg.Flows[0].HTTP
		if h.ClientCertFile != "c.pem" || h.ClientKeyFile != "c-key.pem" || string(h.ClientCert) != cert || string(h.ClientKey) != key {
			t.Errorf("client cert = %q %q, want c.pem c-key.pem and their contents", h.ClientCertFile, h.ClientKeyFile)
		}
	})
	t.Run("defaults, cleared by a flow", func(t *testing.T) {
		cfg, errs := loadFiles(t, files("defaults: {tls: {client_cert: c.pem, client_key: c-key.pem}}\nflows: [a.yaml, b.yaml]\n", map[string]string{
			"a.yaml": "name: a\n" + step,
			"b.yaml": "name: b\ntls: {client_cert: \"\", client_key: \"\"}\n" + step}))
		if errs != nil {
			t.Fatal(errs)
		}
		if got := string(cfg.Flows[0].HTTP.ClientCert); got != cert {
			t.Errorf("flow a: defaults' client cert not inherited")
		}
		if h := cfg.Flows[1].HTTP; h.ClientCert != nil || h.ClientKey != nil || h.ClientCertFile != "" {
			t.Errorf("flow b: client cert not cleared: %q", h.ClientCertFile)
		}
	})
	t.Run("errors", func(t *testing.T) {
		_, errs := loadFiles(t, files("flows: [a.yaml, b.yaml, c.yaml, d.yaml, e.yaml]\n", map[string]string{
			"a.yaml": "name: a\ntls: {client_cert: c.pem}\n" + step,
			"b.yaml": "name: b\ntls: {client_key: c-key.pem}\n" + step,
			"c.yaml": "name: c\ntls: {client_cert: c.pem, client_key: other-key.pem}\n" + step,
			"d.yaml": "name: d\ntls: {client_cert: c.pem, client_key: missing.pem}\n" + step,
			"e.yaml": "name: e\ntls: {client_cert: c-key.pem, client_key: c.pem}\n" + step,
		}))
		want := []string{
			`a.yaml:2:20: tls.client_cert needs tls.client_key beside it (a client certificate is both or neither)`,
			`b.yaml:2:19: tls.client_key needs tls.client_cert beside it (a client certificate is both or neither)`,
			`c.yaml:2:20: tls.client_cert c.pem and tls.client_key other-key.pem are not a certificate and its key: tls: private key does not match public key`,
			`d.yaml:2:39: tls.client_key: reading missing.pem: file does not exist`,
		}
		for _, w := range want {
			if !slices.Contains(errs, w) {
				t.Errorf("missing error %s\ngot:\n%s", w, strings.Join(errs, "\n"))
			}
		}
		var e string
		for _, l := range errs {
			if strings.HasPrefix(l, "e.yaml:2:20: tls.client_cert c-key.pem and tls.client_key c.pem are not a certificate and its key") {
				e = l
			}
		}
		if e == "" {
			t.Errorf("no error for swapped files; got:\n%s", strings.Join(errs, "\n"))
		}
		for _, l := range errs {
			if strings.Contains(l, "PRIVATE KEY") || strings.Contains(l, strings.Split(key, "\n")[1]) {
				t.Errorf("an error shows the key: %s", l)
			}
		}
	})
}

// TestClientCertificateFromSecret: client_cert and client_key as one
// {{secret:NAME}} each, the PEM the secret's value; what is wrong with one
// is said at its place; a key, from a secret or a file, is redacted.
func TestClientCertificateFromSecret(t *testing.T) {
	cert, key := selfSigned(t)
	probes := "secrets:\n  K: {env: K}\n  C: {env: C}\n  OPT: {env: OPT, optional: true}\nvars: {shop: x}\nflows: [f.yaml]\n"
	step := "steps:\n  - name: s\n    request: {url: \"https://x/\"}\n"
	load := func(t *testing.T, flow string, skip bool) (*Config, string) {
		t.Helper()
		fsys := fstest.MapFS{"probes.yaml": {Data: []byte(probes)}, "f.yaml": {Data: []byte(flow)},
			"c.pem": {Data: []byte(cert)}, "k.pem": {Data: []byte(key)}}
		cfg, err := Load(fsys, "probes.yaml", Options{SkipSecrets: skip, Env: lookup(map[string]string{"K": key, "C": cert})})
		if err != nil {
			return nil, err.Error()
		}
		return cfg, ""
	}
	t.Run("flow and step", func(t *testing.T) {
		cfg, errs := load(t, "name: f\ntls: {client_cert: c.pem, client_key: \"{{secret:K}}\"}\nsteps:\n  - name: s\n    request:\n      url: \"https://x/\"\n      tls: {client_cert: \"{{secret:C}}\", client_key: k.pem}\n", false)
		if errs != "" {
			t.Fatal(errs)
		}
		h := cfg.Flows[0].HTTP
		if h.ClientCertFile != "c.pem" || h.ClientKeyFile != "secret K" || string(h.ClientKey) != key || string(h.ClientCert) != cert {
			t.Errorf("flow: %q %q, want c.pem and secret K with their PEM", h.ClientCertFile, h.ClientKeyFile)
		}
		s := cfg.Flows[0].Steps[0].Spec.(*HTTPSpec).TLS
		if s == nil || s.ClientCertFile != "secret C" || s.ClientKeyFile != "k.pem" || string(s.ClientKey) != key {
			t.Errorf("step: %+v, want secret C and k.pem", s)
		}
		// The key from the secret and the key file are masked.
		if got := cfg.Secrets.Redact("a " + key + " b"); got != "a [secret:K] b" {
			t.Errorf("the key is not redacted: %q", got)
		}
		if !slices.Contains(cfg.Secrets.Names(), "client_key:k.pem") {
			t.Errorf("the key file is not among the redacted values: %v", cfg.Secrets.Names())
		}
	})
	t.Run("validate without secrets", func(t *testing.T) {
		cfg, errs := load(t, "name: f\ntls: {client_cert: \"{{secret:C}}\", client_key: \"{{secret:K}}\"}\n"+step, true)
		if errs != "" {
			t.Fatal(errs)
		}
		if h := cfg.Flows[0].HTTP; h.ClientKeyFile != "secret K" || h.ClientKey != nil {
			t.Errorf("%q %d bytes, want secret K, unread", h.ClientKeyFile, len(h.ClientKey))
		}
	})
	for _, tc := range []struct{ name, tls, want string }{
		{"undeclared", `{client_cert: c.pem, client_key: "{{secret:KK}}"}`, `f.yaml:2:39: undefined secret "KK" (declare it under secrets: in probes.yaml) (did you mean "K"?)`},
		{"optional, unset", `{client_cert: c.pem, client_key: "{{secret:OPT}}"}`, `f.yaml:2:39: secret "OPT" is optional and not set, but tls.client_key needs it`},
		{"inside a path", `{client_cert: c.pem, client_key: "keys/{{secret:K}}.pem"}`, `f.yaml:2:39: tls.client_key is a file path or one {{secret:NAME}} (the PEM is the secret's value), got "keys/{{secret:K}}.pem"`},
		{"a variable", `{client_cert: "{{shop}}", client_key: k.pem}`, `f.yaml:2:20: tls.client_cert is a file path or one {{secret:NAME}} (the PEM is the secret's value), got "{{shop}}"`},
		{"not a pair", `{client_cert: "{{secret:K}}", client_key: "{{secret:C}}"}`, `f.yaml:2:20: tls.client_cert secret K and tls.client_key secret C are not a certificate and its key: tls: failed to find certificate PEM data in certificate input, but did find a private key; PEM inputs may have been switched`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := load(t, "name: f\ntls: "+tc.tls+"\n"+step, false)
			if errs != tc.want {
				t.Errorf("got  %s\nwant %s", errs, tc.want)
			}
		})
	}
}
