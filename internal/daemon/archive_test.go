package daemon

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/prober-dev/prober/internal/result"
)

const archiveProbes = "flows: [f.yaml]\n"
const archiveFlow = "name: shop\nevery: 1h\nsteps:\n  - name: a\n    request: {url: \"http://127.0.0.1:1/\"}\n"

// archiveDaemon builds a daemon on dir as `prober run --state-dir dir`.
func archiveDaemon(t *testing.T, dir string, log io.Writer) *Daemon {
	t.Helper()
	d, err := New(Options{ConfigFS: fstest.MapFS{"probes.yaml": {Data: []byte(archiveProbes)}, "f.yaml": {Data: []byte(archiveFlow)}},
		ConfigPath: "probes.yaml", StateDir: dir, Logger: slog.New(slog.NewJSONHandler(log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// discard ends a daemon that was not served: its scheduler's loop (which
// the package's leak checks would find) and its files.
func discard(d *Daemon) {
	_ = d.sched.Stop(context.Background())
	d.closeArchive()
}

// serveAndStop runs Serve until fn returns, then shuts down as on SIGTERM.
func serveAndStop(t *testing.T, d *Daemon, fn func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx, ln) }()
	fn()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, d *Daemon, path string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	d.Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	if rec.Code != 200 {
		t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// A restart (SIGTERM, then a new daemon on the same state dir) keeps the
// runs and the uptime figures.
func TestRestartKeepsRunHistory(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	mk := func(i int, start time.Time, ok bool) *result.Run {
		r := &result.Run{Flow: "shop", Region: "local", TraceID: strings.Repeat("0", 31) + string(rune('a'+i)),
			ID: strings.Repeat("1", 15) + string(rune('a'+i)), Start: start, Duration: 120 * time.Millisecond,
			Status: result.Passed, Class: result.OK}
		if !ok {
			r.Status, r.Class, r.FailedStep = result.Failed, result.HTTP5xx, "a"
		}
		return r
	}
	// Three days ago one failed run (its buckets outlive the runs' 48h);
	// in the last hour 3 passed, 1 failed.
	runs := []*result.Run{mk(0, now.Add(-72*time.Hour), false)}
	for i, ok := range []bool{true, false, true, true} {
		runs = append(runs, mk(i+1, now.Add(-time.Hour+time.Duration(i)*time.Minute), ok))
	}
	d := archiveDaemon(t, dir, io.Discard)
	serveAndStop(t, d, func() {
		for _, r := range runs {
			d.observe(r)
		}
	})
	if _, err := os.Stat(filepath.Join(dir, archiveFile)); err != nil {
		t.Fatal(err)
	}

	var log bytes.Buffer
	d = archiveDaemon(t, dir, &log)
	defer discard(d)
	if !strings.Contains(log.String(), `"msg":"run_history_loaded"`) {
		t.Errorf("no run_history_loaded line:\n%s", log.String())
	}
	got := d.Recent("shop", 0)
	if len(got) != len(runs) { // nothing pruned yet: this daemon has not served
		t.Fatalf("%d runs after the restart, want %d", len(got), len(runs))
	}
	if got[0].TraceID != runs[len(runs)-1].TraceID || got[len(got)-1].TraceID != runs[0].TraceID {
		t.Errorf("runs after restart out of order: newest %s, oldest %s", got[0].TraceID, got[len(got)-1].TraceID)
	}
	page := get(t, d, "/flows/shop")
	for _, w := range []string{"<b>75.00%</b> 24h", "<b>60.00%</b> 7d", "<b>60.00%</b> 30d", `<svg class="latency"`} {
		if !strings.Contains(page, w) {
			t.Errorf("flow page after restart lacks %q", w)
		}
	}
	if b := get(t, d, "/badges/shop/uptime/7d.svg"); !strings.Contains(b, ">60.00%</text>") {
		t.Errorf("7d badge after restart:\n%s", b)
	}
	if b := get(t, d, "/"); !strings.Contains(b, "uptime 24h 75.00%") {
		t.Error("status page after restart lacks the 24h uptime")
	}
}

// An unreadable history is moved aside with a log line, and a fresh one
// started; the daemon runs.
func TestUnreadableRunHistory(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, archiveFile)
	if err := os.WriteFile(path, bytes.Repeat([]byte("not bbolt "), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	d := archiveDaemon(t, dir, &log)
	defer discard(d)
	if !strings.Contains(log.String(), `"msg":"run_history_unreadable"`) {
		t.Fatalf("no run_history_unreadable line:\n%s", log.String())
	}
	aside, _ := filepath.Glob(path + ".unreadable-*")
	if len(aside) != 1 {
		t.Fatalf("moved aside: %v", aside)
	}
	if b, _ := os.ReadFile(aside[0]); !bytes.HasPrefix(b, []byte("not bbolt")) {
		t.Error("the unreadable file was not kept as it was")
	}
	if got := d.Recent("shop", 0); len(got) != 0 {
		t.Errorf("%d runs from an unreadable history", len(got))
	}
}

// history: {enabled: false} keeps no file and shows no history.
func TestRunHistoryOff(t *testing.T) {
	dir := t.TempDir()
	d, err := New(Options{ConfigFS: fstest.MapFS{"probes.yaml": {Data: []byte("history: {enabled: false}\n" + archiveProbes)},
		"f.yaml": {Data: []byte(archiveFlow)}}, ConfigPath: "probes.yaml", StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	serveAndStop(t, d, func() {
		d.observe(&result.Run{Flow: "shop", Start: time.Now(), Status: result.Passed, Class: result.OK})
	})
	if _, err := os.Stat(filepath.Join(dir, archiveFile)); err == nil {
		t.Error("history.db written with history off")
	}
	if page := get(t, d, "/flows/shop"); strings.Contains(page, "<svg") {
		t.Error("a latency graph with history off")
	}
}
