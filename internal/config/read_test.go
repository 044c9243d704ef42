package config

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"
)

// loadWithin runs Load and fails the test if it has not returned within a
// few seconds (the bug it guards against is a read that never ends).
func loadWithin(t *testing.T, fsys fs.FS, name string, o Options) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		if o.Env == nil {
			o.Env = lookup(goodEnv())
		}
		_, err := Load(fsys, name, o)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("Load(%s) still reading after 10s", name)
		return nil
	}
}

// endless is a file whose Stat says it is small and regular but whose reads
// never end: what a device or a file growing under us looks like to a
// reader that trusts the reported size.
type endless struct{ fstest.MapFS }

type endlessFile struct{ fs.File }

func (endlessFile) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func (e endless) Open(name string) (fs.File, error) {
	f, err := e.MapFS.Open(name)
	if err != nil || name != "probes.yaml" {
		return f, err
	}
	return endlessFile{f}, nil
}

func TestConfigReadIsBounded(t *testing.T) {
	fsys := endless{fstest.MapFS{"probes.yaml": {Data: []byte("region: x\n")}}}
	err := loadWithin(t, fsys, "probes.yaml", Options{Notifiers: testKinds})
	if err == nil || !strings.Contains(err.Error(), "larger than 1048576 bytes") {
		t.Fatalf("endless probes.yaml: got %v, want a size error", err)
	}
}

// A device, a FIFO or a directory given as probes.yaml, a flow, a secret or
// a CA file is refused by name, before it is opened (opening a FIFO blocks
// until a writer comes).
func TestNonRegularFilesRefused(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, "testdata/good", dir)
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	if err := os.Mkdir(filepath.Join(dir, "dir.yaml"), 0o700); err != nil {
		t.Fatal(err)
	}
	probes, err := os.ReadFile(filepath.Join(dir, "probes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("flowfifo.yaml", strings.Replace(string(probes), "  - flows/checkout.yaml\n", "  - flows/checkout.yaml\n  - fifo.yaml\n", 1))
	write("secretfifo.yaml", strings.Replace(string(probes), "{file: secrets/api_key}", "{file: fifo.yaml}", 1))
	write("secretdev.yaml", strings.Replace(string(probes), "{file: secrets/api_key}", "{file: /dev/zero}", 1))
	for _, tc := range []struct {
		fsys fs.FS
		name string
		want string
	}{
		{os.DirFS("/dev"), "zero", "reading zero: is a device, not a regular file"},
		{os.DirFS(dir), "fifo.yaml", "reading fifo.yaml: is a named pipe (FIFO), not a regular file"},
		{os.DirFS(dir), "dir.yaml", "reading dir.yaml: is a directory, not a file"},
		{os.DirFS(dir), "flowfifo.yaml", "reading fifo.yaml: is a named pipe (FIFO), not a regular file"},
		{os.DirFS(dir), "secretfifo.yaml", "secret API_KEY: reading fifo.yaml: is a named pipe (FIFO), not a regular file"},
		{os.DirFS(dir), "secretdev.yaml", "secret API_KEY: reading /dev/zero: is a device, not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := loadWithin(t, tc.fsys, tc.name, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// copyTree copies the regular files under src into dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o700)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		o, err := os.Create(out)
		if err != nil {
			return err
		}
		defer o.Close()
		_, err = io.Copy(o, in)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
