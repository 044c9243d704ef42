package config

import (
	"errors"
	"io/fs"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
)

// TestShortSecretsRefused (issue 13, item 6): a secret shorter than
// secret.MinLen is a load error naming it and where it is declared, never
// its value; an optional secret that is unset stays unset (its notifier is
// disabled), as before.
func TestShortSecretsRefused(t *testing.T) {
	env := map[string]string{"ONE": "x", "SEVEN": "abc4567", "SPACED": "  ab  cd  ", "OK": "long-enough-1", "OPT_SHORT": "tiny"}
	fsys := fstest.MapFS{
		"probes.yaml": {Data: []byte(`secrets:
  ONE: {env: ONE}
  SEVEN: {env: SEVEN}
  SPACED: {env: SPACED}
  OK: {env: OK}
  FILE: {file: /run/secrets/f}
  OPT_UNSET: {env: OPT_UNSET, optional: true}
  OPT_SHORT: {env: OPT_SHORT, optional: true}
flows: [f.yaml]
`)},
		"f.yaml": {Data: []byte("name: f\nsteps:\n  - name: a\n    request: {url: \"http://x/{{secret:OK}}\"}\n")},
	}
	_, err := Load(fsys, "probes.yaml", Options{Notifiers: testKinds,
		Env: lookup(env),
		ReadFile: func(p string) ([]byte, error) {
			if p == "/run/secrets/f" {
				return []byte("short\n"), nil
			}
			return nil, &fs.PathError{Op: "open", Path: p, Err: syscall.ENOENT}
		},
	})
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Load: %v, want errors", err)
	}
	want := []string{
		"probes.yaml:2:3: secret ONE is too short: 1 characters, want at least 8",
		"probes.yaml:3:3: secret SEVEN is too short: 7 characters, want at least 8",
		"probes.yaml:4:3: secret SPACED is too short: 5 characters, want at least 8",
		"probes.yaml:6:3: secret FILE is too short: 5 characters, want at least 8",
		"probes.yaml:8:3: secret OPT_SHORT is too short: 4 characters, want at least 8",
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Fatalf("errors:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}

	// Unset optional secrets and long enough ones load.
	fsys["probes.yaml"] = &fstest.MapFile{Data: []byte("secrets:\n  OK: {env: OK}\n  OPT_UNSET: {env: OPT_UNSET, optional: true}\nflows: [f.yaml]\n")}
	cfg, err := Load(fsys, "probes.yaml", Options{Notifiers: testKinds, Env: lookup(env)})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := cfg.Secrets.Get("OK"); v != "long-enough-1" {
		t.Errorf("OK = %q", v)
	}
}
