package schedule

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/prober-dev/prober/internal/config"
)

// What the scheduler keeps per flow, after a start and a reload that keeps
// every flow: at most 128 bytes (measured 104: the 96-byte entry and its
// place in the list by name). It kept about 300: a 240-byte entry with
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
	if got := unsafe.Sizeof(entry{}); got != 96 && unsafe.Sizeof(uintptr(0)) == 8 {
		t.Errorf("entry is %d bytes, want 96 (a size class: a field more costs 16 a flow)", got)
	}
	if perFlow > 128 && !raceEnabled {
		t.Errorf("%.0f bytes retained a flow, want <= 128", perFlow)
	}
	t.Logf("%.0f bytes a flow", perFlow)
}
