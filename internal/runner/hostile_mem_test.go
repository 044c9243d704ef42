package runner

import (
	"runtime"
	"testing"
	"time"
)

// TestHostileResponsesLeaveNoResidue runs every hostile response many times
// and checks that goroutines and the live heap come back to where they
// started: a 10 MB body, an endless one or a gzip bomb must cost a step,
// never the daemon's memory.
func TestHostileResponsesLeaveNoResidue(t *testing.T) {
	srv := hostile(t)
	paths := []string{"/huge", "/endless", "/gzipbomb", "/trickle", "/noheaders", "/html", "/truncated-json",
		"/loop", "/reset", "/close-before-headers", "/hugeheaders", "/manyheaders", "/status/503", "/swallowed"}
	run := func() {
		for _, p := range paths {
			st := newStep("s", "GET", srv.URL+p, `json.status == "success"`)
			st.Timeout = 300 * time.Millisecond
			mustRun(t, newFlow(st), Options{})
		}
	}
	run() // warm up pools, connections, the hostile server's own state
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	time.Sleep(200 * time.Millisecond)
	g0, h0 := runtime.NumGoroutine(), heap()
	for i := 0; i < 10; i++ {
		run()
	}
	waitGoroutines(t, g0)
	// The body buffer pool may keep a few MiB of buffers alive; 10 rounds of
	// 10 MB bodies and 50 MB bombs must not have grown the heap beyond that.
	if h1 := heap(); h1 > h0+16<<20 {
		t.Fatalf("heap in use grew from %d to %d bytes after 10 rounds of hostile responses", h0, h1)
	}
}
