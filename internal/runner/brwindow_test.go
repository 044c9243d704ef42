package runner

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/andybalholm/brotli"

	"github.com/prober-dev/prober/internal/result"
)

func brotliOf(b []byte, lgwin int) []byte { return brotliOfQ(b, lgwin, 5) }

func brotliOfQ(b []byte, lgwin, q int) []byte {
	var buf bytes.Buffer
	w := brotli.NewWriterOptions(&buf, brotli.WriterOptions{Quality: q, LGWin: lgwin})
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// The window a stream declares is what its decoder may allocate: read
// from the first bits as the encoder wrote them, for every size.
func TestBrotliWindowHeader(t *testing.T) {
	for lgwin := 10; lgwin <= 24; lgwin++ {
		b := brotliOf([]byte("hello, hello, hello"), lgwin)
		if got := brotliWindow(b[0]); got != 1<<lgwin {
			t.Errorf("lgwin %d: first byte %#08b read as a %d-byte window, want %d", lgwin, b[0], got, 1<<lgwin)
		}
	}
	// 0b0010001: the large-window marker, refused by the decoder unread.
	if got := brotliWindow(0x11); got != 0 {
		t.Errorf("large-window stream weighed %d, want 0", got)
	}
}

// Eight br bombs at once, each declaring a 16 MiB window, hold at most
// the Transports' budget of windows (one), not 8 x 16 MiB.
func TestConcurrentBrotliBombsBounded(t *testing.T) {
	const n = 8
	bomb := brotliOfQ(make([]byte, 24<<20), 24, 4) // more than a 16 MiB window of zeros, in 26 bytes
	var arrived sync.WaitGroup
	arrived.Add(n)
	all := make(chan struct{})
	go func() { arrived.Wait(); close(all) }()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Done()
		<-all // every body arrives together, so every decode would overlap
		w.Header().Set("Content-Encoding", "br")
		w.Write(bomb)
	}))
	defer srv.Close()

	heap := func() uint64 {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	// A GC target close to the live heap, so that the peak is what the
	// decodes hold rather than how much garbage the pacer let pile up.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	h0 := heap()
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if h := heap(); h > peak.Load() {
				peak.Store(h)
			}
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Microsecond):
			}
		}
	}()
	tr := NewTransportsLimited(16 << 20)
	var wg sync.WaitGroup
	classes := make([]result.Class, n)
	for i := range n {
		wg.Go(func() {
			st := withHeader(newStep("s", "GET", srv.URL+"/", "status == 200"), "Accept-Encoding", "br")
			// Decodes in turn take up to seconds each under -race.
			st.Timeout = 5 * time.Minute
			f := newFlow(st)
			f.Timeout = st.Timeout
			f.HTTP.BodyLimit = 64 << 10 // the window is the bomb's cost, not its output
			classes[i] = mustRun(t, f, Options{Transports: tr}).Steps[0].Class
		})
	}
	wg.Wait()
	close(stop)
	<-sampled
	for i, c := range classes {
		if c != result.BodyTooLarge {
			t.Errorf("flow %d: class %q, want body_too_large", i, c)
		}
	}
	grew := int64(peak.Load()) - int64(h0)
	t.Logf("heap in use peaked %.1f MiB above the %.1f MiB before, %d bombs of %d bytes", float64(grew)/(1<<20), float64(h0)/(1<<20), n, len(bomb))
	// 16 MiB of windows and the runs' own (32.5 MiB measured); unbounded,
	// 8 windows alone are 128 MiB (113-130 MiB measured).
	if grew > 80<<20 {
		t.Errorf("heap in use grew by %d MiB", grew>>20)
	}
}

// A br decode waiting for the budget ends with the step's timeout, its
// class timeout, not a hang nor a network failure.
func TestBrotliWaitEndsWithStepTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		body := brotliOf([]byte(`{"status":"success"}`), 22)
		pn := newPipeNet()
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Encoding", "br")
			w.Write(body)
		})}
		go srv.Serve(pn)
		defer srv.Close()
		tr := NewTransportsLimited(8 << 20)
		// Another decode holds the whole budget for longer than the step.
		if err := tr.brotli.sem.Acquire(context.Background(), 8<<20); err != nil {
			t.Fatal(err)
		}
		st := withHeader(newStep("s", "GET", "http://api.test/x", `json.status == "success"`), "Accept-Encoding", "br")
		st.Timeout = 2 * time.Second
		start := time.Now()
		res := mustRun(t, newFlow(st), Options{DialContext: pn.dial, Transports: tr})
		s := res.Steps[0]
		if s.Class != result.Timeout || len(s.Failures) == 0 ||
			!strings.Contains(s.Failures[0].Message, "body not decoded within the step timeout (2s): waiting for 4 MiB of memory for brotli windows") {
			t.Fatalf("class %q, failures %v", s.Class, s.Failures)
		}
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("step ended after %s, want its 2s timeout", d)
		}
		if s.BodyBytes != int64(len(body)) {
			t.Errorf("body bytes %d, want the %d received", s.BodyBytes, len(body))
		}
		// Once the budget is free, the same step decodes.
		tr.brotli.sem.Release(8 << 20)
		if s := mustRun(t, newFlow(st), Options{DialContext: pn.dial, Transports: tr}).Steps[0]; s.Class != result.OK {
			t.Fatalf("after release: class %q, %v", s.Class, s.Failures)
		}
	})
}
