package store

import (
	"fmt"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/result"
)

// manyFlows announces n flows ("a" and n-1 others) to s with keep runs
// each: at 20,000 flows each holds 1 run in full.
func manyFlows(s *Store, n, keep int) {
	names := []string{"a"}
	for i := 1; i < n; i++ {
		names = append(names, fmt.Sprintf("f-%05d", i))
	}
	s.Retain(names, keep)
}

// With the run history on disk, a flow's runs older than its full ones are
// read from it: the strip, a flow's page and the API still get keep runs,
// newest first, now each in full (queued or written), and memory holds
// only the full one.
func TestOlderRunsFromArchive(t *testing.T) {
	a := openArchive(t, filepath.Join(t.TempDir(), "history.db"), ArchiveLimits{RunAge: 40 * 24 * time.Hour})
	s := New(30)
	s.SetOlder(a)
	manyFlows(s, 20000, 30)
	var runs []*result.Run
	for i := range 40 {
		r := timed("a", t0.Add(time.Duration(i)*time.Minute), time.Second, i%7 != 3, i)
		runs = append(runs, r)
		s.Observe(r)
		a.Observe(r)
		if i == 25 {
			if err := a.Flush(); err != nil { // some written, some queued
				t.Fatal(err)
			}
		}
	}
	if fd := s.flows["a"]; len(fd.full) != 1 || fd.sm != nil {
		t.Errorf("held in memory: %d full, summaries %v; want 1, none", len(fd.full), fd.sm)
	}
	if got := s.HeldPerFlow(); got != 1 {
		t.Errorf("HeldPerFlow = %d, want 1", got)
	}
	for _, n := range []int{0, 1, 2, 14, 30, 100} {
		got := s.Recent("a", n)
		want := min(30, n)
		if n == 0 {
			want = 30
		}
		if len(got) != want {
			t.Fatalf("Recent(a, %d): %d runs, want %d", n, len(got), want)
		}
		for i, r := range got {
			if w := runs[len(runs)-1-i]; !sameRun(r, w) || r.Summarized {
				t.Fatalf("Recent(a, %d)[%d]:\n got %+v\nwant %+v", n, i, r, w)
			}
		}
	}
	// A restart: the newest run back into memory, the rest on disk.
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}
	s2 := New(30)
	s2.SetOlder(a)
	manyFlows(s2, 20000, 30)
	s2.Restore("a", a.Recent("a", 30))
	if fd := s2.flows["a"]; len(fd.full) != 1 || fd.sm != nil {
		t.Errorf("restored into memory: %d full, summaries %v; want 1, none", len(fd.full), fd.sm)
	}
	if got := s2.Recent("a", 0); len(got) != 30 || got[0].TraceID != runs[39].TraceID || got[29].TraceID != runs[10].TraceID {
		t.Errorf("after restore: %d runs, %v", len(got), ids(got))
	}
}

// What a flow's 30 kept runs cost in memory at 10,000 flows, next to the
// same store keeping the older 29 as summaries (measured: 1,426 bytes a flow
// more). The runs are made before the baseline: only what the store keeps
// is counted.
func TestOlderRunsRetained(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector grows every allocation")
	}
	const flows, each = 10000, 30
	a := openArchive(t, filepath.Join(t.TempDir(), "history.db"), ArchiveLimits{})
	runs := make([]*result.Run, flows)
	names := make([]string, flows)
	for i := range runs {
		runs[i] = timed(fmt.Sprintf("f-%05d", i), t0, time.Second, true, i)
		names[i] = runs[i].Flow
	}
	retained := func(older OlderRuns) float64 {
		runtime.GC()
		runtime.GC() // sync.Pools' contents go at the second
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		s := New(each)
		s.SetOlder(older)
		s.Retain(names, each)
		for m := range each {
			for _, r := range runs {
				r.Start = t0.Add(time.Duration(m) * time.Minute)
				s.Observe(r)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if got := s.Recent(names[0], 0); older == nil && len(got) != each {
			t.Fatalf("%d runs kept, want %d", len(got), each)
		}
		runtime.KeepAlive(s)
		return float64(after.HeapAlloc-before.HeapAlloc) / flows
	}
	inMemory := retained(nil)
	onDisk := retained(a)
	t.Logf("bytes a flow: %.0f with the older runs as summaries, %.0f with them on disk (10,000 flows: %.1f MB less)",
		inMemory, onDisk, (inMemory-onDisk)*flows/1e6)
	if onDisk > inMemory-1200 {
		t.Errorf("with the older runs on disk %.0f bytes a flow, want at least 1,200 less than %.0f", onDisk, inMemory)
	}
	runtime.KeepAlive(runs)
}
