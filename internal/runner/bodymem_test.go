package runner

import (
	"bytes"

	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// bodyAllocs is the bytes allocated by one run of a step reading a body of
// n bytes (limit 1 MiB), the body buffer pool emptied first as after a
// collection: what a response costs when no buffer is at hand.
func bodyAllocs(t testing.TB, path string) float64 {
	body := bytes.Repeat([]byte("a"), 2<<20)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		if r.URL.Path == "/chunked" {
			for off := 0; off < n; off += 32 << 10 {
				w.Write(body[off:min(n, off+32<<10)])
				w.(http.Flusher).Flush()
			}
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.Write(body[:n])
	}))
	defer srv.Close()
	st := newStep("s", "GET", srv.URL+path, "status == 200")
	f, err := New(newFlow(st), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var total uint64
	const runs = 5
	for range runs {
		runtime.GC()
		runtime.GC() // twice: the pool's victim cache too
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		r := f.Run(t.Context(), time.Time{})
		runtime.ReadMemStats(&m1)
		if r.Steps[0].BodyBytes == 0 {
			t.Fatalf("no body: %+v", r.Steps[0])
		}
		total += m1.TotalAlloc - m0.TotalAlloc
	}
	return float64(total) / runs
}

// A response costs about its body in memory, not the 2x-4x of a
// bytes.Buffer: the buffer is sized from Content-Length, and without one
// grows by doubling to at most limit+1 (about 2x allocated in all, the
// buffer kept at most limit+1).
func TestResponseMemoryNearBodyLimit(t *testing.T) {
	const limit = 1 << 20
	base := bodyAllocs(t, "/cl?n=16")
	t.Logf("a 16-byte body: %.0f bytes allocated per run", base)
	for _, tc := range []struct {
		path string
		max  float64 // bytes allocated per run, in units of limit
	}{
		{"/cl?n=1048576", 1.25},     // exactly the limit, Content-Length known
		{"/cl?n=1048577", 1.25},     // one over: body_too_large after limit+1 bytes
		{"/chunked?n=1048576", 2.1}, // unknown length: grown by doubling, capped at limit+1
		{"/chunked?n=2097152", 2.1}, // unknown length, over the limit (an endless body, a gzip bomb)
		{"/cl?n=300000", 0.35},
	} {
		t.Run(tc.path, func(t *testing.T) {
			// Less what a run with a 16-byte body costs (transport, buffers,
			// the result).
			got := bodyAllocs(t, tc.path) - base
			t.Logf("%s: %.0f bytes allocated per run beyond a tiny body's, %.2fx body_limit", tc.path, got, got/limit)
			if got > tc.max*limit {
				t.Errorf("%.2fx body_limit allocated per run, want at most %.2fx", got/limit, tc.max)
			}
		})
	}
}
