// Package kindtest runs flows of step kinds through the real loader and
// runner, for the kinds' tests.
package kindtest

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/runner"
)

// Load loads flow (the YAML of flows/f.yaml) with kinds registered. The
// files of dir are beside it (CA files and the like). Secrets: S=s3cr3t-value,
// and for each file NAME.secret of dir a secret NAME, its contents (a
// client key, say).
func Load(t testing.TB, dir, flow string, kinds ...config.StepKind) (*config.Config, error) {
	t.Helper()
	probes := "flows: [flows/f.yaml]\nsecrets:\n  S: {env: S}\n"
	fsys := fstest.MapFS{
		"flows/f.yaml": {Data: []byte(flow)},
	}
	if dir != "" {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			data, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			fsys["flows/"+e.Name()] = &fstest.MapFile{Data: data}
			if name, ok := strings.CutSuffix(e.Name(), ".secret"); ok {
				probes += "  " + name + ": {file: flows/" + e.Name() + "}\n"
			}
		}
	}
	fsys["probes.yaml"] = &fstest.MapFile{Data: []byte(probes)}
	return config.Load(fsys, "probes.yaml", config.Options{
		StepKinds: kinds,
		Env: func(name string) (string, bool) {
			if name == "S" {
				return "s3cr3t-value", true
			}
			return "", false
		},
	})
}

// Run loads flow and runs it once.
func Run(t testing.TB, dir, flow string, kinds ...config.StepKind) *result.Run {
	t.Helper()
	return RunWith(t, dir, flow, runner.Options{}, kinds...)
}

// RunWith is Run with the runner's options (a DialContext that injects
// faults); its version, region and secrets are the test's.
func RunWith(t testing.TB, dir, flow string, opts runner.Options, kinds ...config.StepKind) *result.Run {
	t.Helper()
	cfg, err := Load(t, dir, flow, kinds...)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	opts.Version, opts.Region, opts.Secrets = "test", "here", cfg.Secrets
	f, err := runner.New(cfg.Flows[0], opts)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return f.Run(ctx, time.Time{})
}

// ServeTCP starts a loopback TCP server that runs handle on each
// connection (and closes it after); it returns the address.
func ServeTCP(t testing.TB, handle func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// ClosedAddr is a loopback address where nothing listens.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// WaitGoroutines fails t unless the goroutines come back to about
// baseline (runtime.NumGoroutine before the runs) within 5s: a kind's
// attempt must not leave any behind, whatever the server did.
func WaitGoroutines(t testing.TB, baseline int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= baseline+2 {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, baseline %d:\n%s", n, baseline, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
}
