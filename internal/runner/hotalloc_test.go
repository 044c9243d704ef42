//go:build !race

// The race detector changes what escapes and drops sync.Pool items at
// random: allocation counts hold without it only.

package runner

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/template"
)

// TestRunAllocsNearBare bounds what a one-step run allocates beyond a bare
// net/http request to the same server (a new connection each, the server's
// allocations on both sides): the run's own state, expansion, timing,
// contexts and result. It was 77 allocations and 6.5 KB before the
// cuts of the hot path (the header copied per attempt, a cookie jar, the
// run's state and client, trace hooks per attempt, a capture map, the
// flow timeout's context when the step's ends first), 52 and 3.5 KB after.
func TestRunAllocsNearBare(t *testing.T) {
	srv := hotServer(t)
	f := hotFlow(t, srv.URL)
	tr := &http.Transport{}
	c := &http.Client{Transport: tr}
	runAllocs, runBytes := measure(func() {
		if r := f.Run(context.Background(), time.Time{}); !r.OK() {
			t.Fatal(r.Summary())
		}
	})
	bareAllocs, bareBytes := measure(func() { bareGet(t, tr, c, srv.URL+"/x") })
	extra, extraBytes := runAllocs-bareAllocs, runBytes-bareBytes
	t.Logf("run %.0f allocs %.0f B, bare %.0f allocs %.0f B: %.0f allocs %.0f B more", runAllocs, runBytes, bareAllocs, bareBytes, extra, extraBytes)
	if extra > 55 {
		t.Errorf("a one-step run allocates %.0f times more than a bare request, want at most 55", extra)
	}
	if extraBytes > 4<<10 {
		t.Errorf("a one-step run allocates %.0f bytes more than a bare request, want at most 4 KiB", extraBytes)
	}
}

// TestPostAllocsNearBare: the same for the load harness's step, a POST
// of a literal JSON body, against a bare POST of the same body. A literal
// body is sent from its source, not copied each step, and the request's
// GetBody is the one http.NewRequest makes for it (a second was set over
// it): 52 allocations more than the bare request before these two, 50
// after.
func TestPostAllocsNearBare(t *testing.T) {
	srv := hotServer(t)
	st := newStep("login", "POST", srv.URL+"/api/login", "status == 200", `json.status == "success"`, "duration < 2s")
	withJSON(st, template.Part{T: template.Literal(`{"user":"synthetic-1","password":"not-a-secret"}`)})
	withCapture(st, "token", "json.token")
	f, err := New(newFlow(st), Options{Version: "bench", Region: "bench"})
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	c := &http.Client{Transport: tr}
	body := []byte(`{"user":"synthetic-1","password":"not-a-secret"}`)
	runAllocs, _ := measure(func() {
		if r := f.Run(context.Background(), time.Time{}); !r.OK() {
			t.Fatal(r.Summary())
		}
	})
	bareAllocs, _ := measure(func() {
		resp, err := c.Post(srv.URL+"/api/login", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
	})
	t.Logf("run %.0f allocs, bare %.0f: %.0f more", runAllocs, bareAllocs, runAllocs-bareAllocs)
	if extra := runAllocs - bareAllocs; extra > 50 {
		t.Errorf("a one-step POST run allocates %.0f times more than a bare POST, want at most 50", extra)
	}
}

// measure is what fn allocates a call, in allocations and bytes.
func measure(fn func()) (allocs, bytes float64) {
	fn() // warm: pools, the transport's first use
	var m0, m1 runtime.MemStats
	const n = 300
	runtime.ReadMemStats(&m0)
	allocs = testing.AllocsPerRun(n, fn)
	runtime.ReadMemStats(&m1)
	return allocs, float64(m1.TotalAlloc-m0.TotalAlloc) / (n + 1)
}

// TestSmallAllocs pins the allocations of the run's small parts: the first
// capture one slice (was a map: two), and an HTTP step's request with no
// configured header five (was eleven: a []string per header value, and the
// prepared request itself), and with one configured header still five
// (its map sized exactly: a hint over 8 entries makes a table, not a group).
func TestSmallAllocs(t *testing.T) {
	st := newStep("s", "GET", "http://127.0.0.1:1/x/{{flow}}")
	f, err := New(newFlow(st), Options{Version: "t", Region: "r"})
	if err != nil {
		t.Fatal(err)
	}
	r := &run{f: f, res: &result.Run{TraceID: newTraceID()}, scope: scope{flow: "test"}}
	spec := st.Spec.(*config.HTTPSpec)
	// defaults: {headers: {Accept: application/json}}, the load harness's
	withAccept := withHeader(newStep("h", "GET", "http://127.0.0.1:1/x"), "Accept", "application/json").Spec.(*config.HTTPSpec)
	for _, tc := range []struct {
		name string
		max  float64
		fn   func()
	}{
		{"first capture", 1, func() { r.scope.captures = nil; r.scope.capture("token", "t") }},
		// the URL's string, the header's map and its group, the values, the traceparent
		{"prepare", 5, func() {
			if _, err := r.prepare(spec, "00f067aa0ba902b7"); err != nil {
				t.Fatal(err)
			}
		}},
		// 7 entries: still a small map (a hint over 8 makes a table)
		{"prepare, a configured header", 5, func() {
			if _, err := r.prepare(withAccept, "00f067aa0ba902b7"); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		if got := testing.AllocsPerRun(100, tc.fn); got > tc.max {
			t.Errorf("%s: %.0f allocations, want at most %.0f", tc.name, got, tc.max)
		}
	}
}

// TestRunStack: a run's goroutine (the scheduler starts one a run) needs
// about 8 KB of stack, not 16: the steps are filled in place in the
// result, not returned, passed and appended by value (some 330 bytes a
// copy, 2.8 KB of Run's frame and 1.9 KB of runStep's), so the runtime
// copies the stack one doubling less a run. Measured as the stack in use
// of runs parked at their end; 17 KB a run before.
func TestRunStack(t *testing.T) {
	srv := hotServer(t)
	f := hotFlow(t, srv.URL)
	f.Run(context.Background(), time.Time{})
	const n = 64
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	var ran, exited sync.WaitGroup
	release := make(chan struct{})
	ran.Add(n)
	exited.Add(n)
	for range n {
		go func() {
			defer exited.Done()
			f.Run(context.Background(), time.Time{})
			ran.Done()
			<-release
		}()
		time.Sleep(time.Millisecond) // one at a time: their connections closed
	}
	ran.Wait()
	runtime.ReadMemStats(&m1)
	close(release)
	exited.Wait()
	perRun := (int64(m1.StackInuse) - int64(m0.StackInuse)) / n
	t.Logf("stack in use per parked run: %d bytes", perRun)
	if perRun > 13<<10 {
		t.Errorf("a run's goroutine holds %d bytes of stack, want at most 13 KiB", perRun)
	}
}
