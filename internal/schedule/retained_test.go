package schedule

import (
	"context"
	"fmt"
	"hash/fnv"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/prober-dev/prober/internal/config"
)

// What the scheduler keeps per flow, after a start and a reload that keeps
// every flow: at most 112 bytes (measured 94: the 80-byte entry, its place
// in the list by name and in the queue). It kept about 300: a 240-byte entry with
// five time.Time, the spec and a mutex, a boxed schedule, a pointer to the
// run and a map entry (3 MB at 10,000 flows).
func TestRetainedPerFlow(t *testing.T) {
	const flows = 10000
	run := func(context.Context, time.Time) {}
	// The jobs are the daemon's (made from the configuration): made before
	// the baseline, so that only what the scheduler keeps is counted.
	jobs := make([]Job, flows)
	for i := range jobs {
		jobs[i] = Job{Name: fmt.Sprintf("flow-%05d", i), Schedule: config.Schedule{Every: time.Hour}, Run: run}
	}
	jobs[0].Schedule = config.Schedule{Cron: "0 * * * *"} // a cron flow among them
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	s := New(Options{})
	for range 2 {
		if err := s.Set(jobs); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perFlow := float64(after.HeapAlloc-before.HeapAlloc) / flows
	s.mu.Lock()
	n, queued := len(s.entries), len(s.queue)
	s.mu.Unlock()
	runtime.KeepAlive(s)
	runtime.KeepAlive(jobs)
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n != flows || queued != flows {
		t.Fatalf("%d entries, %d queued; want %d", n, queued, flows)
	}
	if got := unsafe.Sizeof(entry{}); got != 80 && unsafe.Sizeof(uintptr(0)) == 8 {
		t.Errorf("entry is %d bytes, want 80 (a size class: a field more costs 16 a flow)", got)
	}
	if perFlow > 112 && !raceEnabled {
		t.Errorf("%.0f bytes retained a flow, want <= 112", perFlow)
	}
	t.Logf("%.0f bytes a flow", perFlow)
}

// offset is FNV-1a of the name as hash/fnv has it (phases are the same as
// in every earlier release, so a restart keeps them), and allocates
// nothing: an interval flow's phase is worked out at each of its runs.
func TestOffsetIsFNV1a(t *testing.T) {
	for _, name := range []string{"", "checkout", "flow-00042", "ünï"} {
		h := fnv.New64a()
		h.Write([]byte(name))
		for _, w := range []time.Duration{time.Second, time.Minute, 10 * time.Second} {
			if got, want := offset(name, w), time.Duration(h.Sum64()%uint64(w)); got != want {
				t.Errorf("offset(%q, %s) = %s, want %s", name, w, got, want)
			}
		}
	}
	var sink time.Duration
	if n := testing.AllocsPerRun(100, func() { sink += offset("flow-00042", time.Minute) }); n != 0 {
		t.Errorf("offset allocates %v times", n)
	}
	_ = sink
}
