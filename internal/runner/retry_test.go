package runner

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/template"
)

// pipeNet is an in-memory network for tests in a synctest bubble: a real
// socket is not durably blocking, so time would not move while a kept-alive
// connection waits; net.Pipe is.
type pipeNet struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeNet() *pipeNet {
	return &pipeNet{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (p *pipeNet) Accept() (net.Conn, error) {
	select {
	case c := <-p.conns:
		return c, nil
	case <-p.done:
		return nil, net.ErrClosed
	}
}

func (p *pipeNet) Close() error {
	p.once.Do(func() { close(p.done) })
	return nil
}

func (p *pipeNet) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80} }

func (p *pipeNet) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	c, s := net.Pipe()
	select {
	case p.conns <- s:
		return c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.done:
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscallRefused{}}
	}
}

type syscallRefused struct{}

func (syscallRefused) Error() string { return "connection refused" }

// served runs the flow against h on a pipeNet inside the bubble and
// returns its result and the (bubble) times at which h was called.
func served(t *testing.T, f *config.Flow, h func(n int, w http.ResponseWriter, r *http.Request)) (*result.Run, []time.Time) {
	t.Helper()
	pn := newPipeNet()
	var (
		mu    sync.Mutex
		times []time.Time
	)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		times = append(times, time.Now())
		n := len(times)
		mu.Unlock()
		h(n, w, r)
	})}
	go srv.Serve(pn)
	defer srv.Close()
	res := mustRun(t, f, Options{DialContext: pn.dial})
	mu.Lock()
	defer mu.Unlock()
	return res, times
}

func withRetry(st *config.Step, attempts int) *config.Step {
	st.Retry = &config.Retry{Attempts: attempts, On: config.DefaultRetryOn, Backoff: 100 * time.Millisecond, MaxBackoff: time.Second}
	return st
}

func TestRetryHonoursRetryAfterSeconds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := withRetry(newStep("s", "GET", "http://api.test/x", "status == 200"), 3)
		res, times := served(t, newFlow(st), func(n int, w http.ResponseWriter, _ *http.Request) {
			if n == 1 {
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			w.WriteHeader(http.StatusOK)
		})
		s := res.Steps[0]
		if s.Status != result.Passed || s.Attempts != 2 || s.Retries != 1 || len(times) != 2 {
			t.Fatalf("step %+v, %d requests", s, len(times))
		}
		// The backoff alone is at most 100ms: the wait is the server's.
		if d := times[1].Sub(times[0]); d < time.Second || d > 1100*time.Millisecond {
			t.Errorf("second attempt %s after the 429, want the 1s Retry-After asked", d)
		}
	})
}

func TestRetryHonoursRetryAfterDate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := withRetry(newStep("s", "GET", "http://api.test/x"), 2)
		res, times := served(t, newFlow(st), func(n int, w http.ResponseWriter, _ *http.Request) {
			if n == 1 {
				// HTTP-dates have whole seconds: 3s on, less what has passed
				// of the current second (none: the bubble starts on one).
				w.Header().Set("Retry-After", time.Now().Add(3*time.Second).UTC().Format(http.TimeFormat))
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			w.WriteHeader(http.StatusOK)
		})
		s := res.Steps[0]
		if s.Status != result.Passed || s.Attempts != 2 || len(times) != 2 {
			t.Fatalf("step %+v", s)
		}
		if d := times[1].Sub(times[0]); d < 2*time.Second || d > 3100*time.Millisecond {
			t.Errorf("second attempt %s after the 503, want about 3s", d)
		}
	})
}

func TestRetry5xxThenPass(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := withRetry(newStep("s", "GET", "http://api.test/x"), 3)
		res, times := served(t, newFlow(st), func(n int, w http.ResponseWriter, _ *http.Request) {
			if n == 1 {
				w.WriteHeader(http.StatusBadGateway)
				return
			}
			w.WriteHeader(http.StatusOK)
		})
		s := res.Steps[0]
		if s.Status != result.Passed || s.Attempts != 2 || s.Retries != 1 || len(times) != 2 || res.Status != result.Passed {
			t.Fatalf("step %+v", s)
		}
		if d := times[1].Sub(times[0]); d > 100*time.Millisecond {
			t.Errorf("backoff %s, want at most the 100ms configured", d)
		}
	})
}

func TestRetryPOSTNotByDefault(t *testing.T) {
	for _, nonIdem := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			st := withRetry(newStep("pay", "POST", "http://api.test/pay"), 3)
			st.Retry.NonIdempotent = nonIdem
			res, times := served(t, newFlow(st), func(_ int, w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusServiceUnavailable)
			})
			want := 1
			if nonIdem {
				want = 3
			}
			if s := res.Steps[0]; s.Attempts != want || len(times) != want || s.Class != result.HTTP5xx {
				t.Errorf("non_idempotent %v: %d requests, step %+v; want %d", nonIdem, len(times), s, want)
			}
		})
	}
}

func TestRetryExhaustedKeepsLastResponse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := withRetry(newStep("s", "GET", "http://api.test/x"), 3)
		f := newFlow(st)
		f.HTTP.KeepResponse = 1 << 10
		res, times := served(t, f, func(n int, w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusTooManyRequests)
			w.Write([]byte("slow down " + strings.Repeat("!", n)))
		})
		s := res.Steps[0]
		if s.Status != result.Failed || s.Class != result.HTTP429 || s.Attempts != 3 || s.Retries != 2 || len(times) != 3 {
			t.Fatalf("step %+v", s)
		}
		if s.Response == nil || s.Response.Status != http.StatusTooManyRequests || !strings.Contains(string(s.Response.Body), "slow down !!!") {
			t.Errorf("kept response %+v, want the third", s.Response)
		}
	})
}

func TestRetryAfterLongerThanLeftFailsFast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := withRetry(newStep("s", "GET", "http://api.test/x", "status == 200"), 5)
		start := time.Now()
		res, times := served(t, newFlow(st), func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "60")
			w.WriteHeader(http.StatusTooManyRequests)
		})
		s := res.Steps[0]
		if s.Status != result.Failed || s.Class != result.HTTP429 || s.Attempts != 1 || len(times) != 1 {
			t.Fatalf("step %+v", s)
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Errorf("gave up after %s, want at once", d)
		}
		if len(s.Failures) == 0 || !strings.Contains(s.Failures[0].Message, "the server asked to wait 1m0s (Retry-After)") ||
			!strings.HasPrefix(s.Failures[0].Message, "http_429: ") {
			t.Errorf("failures %+v", s.Failures)
		}
	})
}

func TestRetryStatusExpected(t *testing.T) {
	// A step that expects the 503 (a maintenance page check) passes at once.
	synctest.Test(t, func(t *testing.T) {
		st := withRetry(newStep("s", "GET", "http://api.test/x", "status == 503"), 3)
		res, times := served(t, newFlow(st), func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusServiceUnavailable)
		})
		if s := res.Steps[0]; s.Status != result.Passed || s.Attempts != 1 || len(times) != 1 {
			t.Errorf("step %+v", s)
		}
	})
}

func TestUntilHonoursRetryAfter(t *testing.T) {
	// The case: a 100ms poll answered 429 Retry-After: 1 came back
	// 105ms later.
	synctest.Test(t, func(t *testing.T) {
		st := newStep("s", "GET", "http://api.test/job")
		st.Until = &config.Until{Expect: newStep("", "GET", "http://x/", "status == 200").Expect, Interval: 100 * time.Millisecond, Within: 4 * time.Second}
		st.StatusChecked = true
		_, times := served(t, newFlow(st), func(n int, w http.ResponseWriter, _ *http.Request) {
			if n == 1 {
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			w.WriteHeader(http.StatusOK)
		})
		if len(times) != 2 || times[1].Sub(times[0]) < time.Second {
			t.Errorf("polls at %v, want the second 1s after the 429", times)
		}
	})
}

func TestBackoffBounds(t *testing.T) {
	rt := &config.Retry{Backoff: 100 * time.Millisecond, MaxBackoff: 300 * time.Millisecond}
	for n, hi := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 300 * time.Millisecond, 8: 300 * time.Millisecond} {
		for range 200 {
			if d := backoff(rt, n); d < 0 || d > hi {
				t.Fatalf("backoff(%d) = %s, want in [0, %s]", n, d, hi)
			}
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"1", time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		{"Mon, 07 Dec 2026 12:00:05 GMT", 5 * time.Second, true},
		{"Mon, 07 Dec 2026 11:00:00 GMT", 0, true}, // past: at once
		{"", 0, false},
		{"-1", 0, false},
		{"soon", 0, false},
	}
	for _, tt := range tests {
		if d, ok := parseRetryAfter(tt.in, now); d != tt.want || ok != tt.ok {
			t.Errorf("parseRetryAfter(%q) = %s, %v; want %s, %v", tt.in, d, ok, tt.want, tt.ok)
		}
	}
}

func TestRetryConnectRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pn := newPipeNet()
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {})}
		go srv.Serve(pn)
		defer srv.Close()
		dials := 0
		dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
			if dials++; dials < 3 {
				return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
			}
			return pn.dial(ctx, network, addr)
		}
		st := withRetry(newStep("s", "GET", "http://api.test/x"), 3)
		res := mustRun(t, newFlow(st), Options{DialContext: dial})
		if s := res.Steps[0]; s.Status != result.Passed || s.Attempts != 3 || s.Retries != 2 || dials != 3 {
			t.Errorf("step %+v after %d dials", s, dials)
		}
		// Only on: classes are retried.
		dials = 0
		st = withRetry(newStep("s", "GET", "http://api.test/x"), 3)
		st.Retry.On = []string{"http_5xx"}
		res = mustRun(t, newFlow(st), Options{DialContext: dial})
		if s := res.Steps[0]; s.Class != result.ConnectRefused || s.Attempts != 1 {
			t.Errorf("on: [http_5xx]: step %+v", s)
		}
	})
}

func TestRetryOtherKinds(t *testing.T) {
	// The seam is the runner's: a registered kind's failures retry too.
	st := echoStep("e", &echoSpec{Msg: template.MustParse("x"), Fail: result.ConnectRefused})
	st.Retry = &config.Retry{Attempts: 3, On: config.DefaultRetryOn, Backoff: time.Millisecond, MaxBackoff: time.Millisecond}
	res := mustRun(t, newFlow(st), Options{})
	if s := res.Steps[0]; s.Class != result.ConnectRefused || s.Attempts != 3 || s.Retries != 2 {
		t.Errorf("step %+v", s)
	}
}
