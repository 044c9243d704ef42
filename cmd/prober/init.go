package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
)

// starterProbes and starterFlow are what prober init writes: one flow
// against one URL, that validate accepts and once runs.
const starterProbes = `# probes.yaml: what prober runs, where it reports, and when it pages.
# See the README's Configuration section; check it with: prober validate
region: "${env:PROBER_REGION:-local}"
listen: "127.0.0.1:8315"
vars:
  target_url: "${env:TARGET_URL:-%s}"
flows:
  - flows/example.yaml
`

const starterFlow = `# A flow: steps run in order; a failed expectation fails the run.
# Try it once: prober once --flow example
name: example
description: the target answers
every: 1m
steps:
  - name: home
    request:
      url: "{{target_url}}"
    expect:
      - status < 400
`

func cmdInit(args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("init", flag.ContinueOnError)
	fl.SetOutput(stderr)
	dir := fl.String("dir", ".", "directory to write probes.yaml and flows/example.yaml into")
	// A URL may follow the flags: parse them, then take at most one argument.
	target := "https://example.com/"
	if err := parseFlags(fl, args); err != nil {
		return err
	}
	switch fl.NArg() {
	case 0:
	case 1:
		target = fl.Arg(0)
		u, err := url.Parse(target)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return usageError{fmt.Errorf("init: %q is not an http(s) URL", target)}
		}
	default:
		return usageError{fmt.Errorf("init: one URL at most, got %d arguments", fl.NArg())}
	}
	files := []struct{ path, text string }{
		{filepath.Join(*dir, "probes.yaml"), fmt.Sprintf(starterProbes, target)},
		{filepath.Join(*dir, "flows", "example.yaml"), starterFlow},
	}
	// Refuse before writing anything: half a starter beside someone's
	// configuration would be worse than none.
	for _, f := range files {
		if _, err := os.Lstat(f.path); err == nil {
			return usageError{fmt.Errorf("init: %s exists; not overwriting it", f.path)}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("init: %w", err)
		}
	}
	for _, f := range files {
		if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
			return fmt.Errorf("init: %w", err)
		}
		// O_EXCL: a file that appeared since the check is not overwritten either.
		fh, err := os.OpenFile(f.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return fmt.Errorf("init: %w", err)
		}
		_, err = io.WriteString(fh, f.text)
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("init: writing %s: %w", f.path, err)
		}
		fmt.Fprintln(stdout, "wrote", f.path)
	}
	fmt.Fprintf(stdout, "next: prober validate --config %s\n      prober once --config %[1]s\n", files[0].path)
	return nil
}
