package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/promrules"
)

// cmdRules prints the configured rules as a Prometheus rule file, for
// teams that evaluate in Prometheus itself.
func cmdRules(args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("rules", flag.ContinueOnError)
	fl.SetOutput(stderr)
	var cf configFlags
	cf.register(fl)
	out := fl.String("out", "", "write the rule file here (atomically) instead of stdout")
	if err := parse(fl, args); err != nil {
		return err
	}
	fsys, path, err := cf.source(false, stderr)
	if err != nil {
		return err
	}
	o := cf.loadOptions()
	o.SkipSecrets = true // rules need no secret, and CI has none
	cfg, err := config.Load(fsys, path, o)
	if err != nil {
		return err
	}
	b, err := promrules.Generate(cfg)
	if err != nil {
		return usageError{err}
	}
	if *out == "" {
		_, err := stdout.Write(b)
		return err
	}
	return writeAtomic(*out, b)
}

// writeAtomic replaces path with b through a rename, so that a Prometheus
// reloading meanwhile never reads half a file.
func writeAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return usageError{fmt.Errorf("--out: %w", err)}
	}
	defer os.Remove(tmp.Name()) // after a successful rename, a no-op
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("--out: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("--out: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	return nil
}
