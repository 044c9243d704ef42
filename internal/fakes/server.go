// Package fakes holds in-process fakes of the PagerDuty Events API v2 and of
// Slack (Web API and incoming webhooks), served over loopback HTTP.
//
// They hold to the real services' contracts (fields, enums, sizes, status
// codes, error bodies, 429 with Retry-After) so that a notifier that passes
// against them also works against the real services, and they are meant to be
// driven through the real client libraries (go-pagerduty, slack-go). Unit tests
// use them in-process; end-to-end tests point a separate prober process at
// their URLs. Every fake can inject faults (status codes for a while or for
// the next n requests, latency, TCP resets) and records what it accepted and
// what it rejected.
//
// Where the real service is laxer than documented, the fakes follow the
// documentation: a notifier that is strict enough for the fake is strict
// enough for the real service. Each such place says so in a comment.
package fakes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Rejection is a request a fake refused under the real API's rules. Injected
// faults (FailFor, FailNext, ResetNext) are not rejections: they only count in
// Requests.
type Rejection struct {
	Status int    // HTTP status answered (200 for Slack Web API "ok":false errors)
	Body   []byte // the request body as received (up to the size limit)
	Reason string // the error answered: PagerDuty's errors joined by "; ", or Slack's error code
}

// ErrClosed is returned by the Wait methods when the fake is closed while waiting.
var ErrClosed = errors.New("fakes: server closed")

// faultKind is what the fault schedule decided for one request.
type faultKind int

const (
	faultNone faultKind = iota
	faultReset
	faultStatus
)

type fault struct {
	kind       faultKind
	status     int
	retryAfter time.Duration // > 0: send Retry-After
	latency    time.Duration
}

// base is the HTTP server, fault schedule, rate limiter and change
// notification shared by the fakes. Its mutex also guards the owning fake's
// state, so a request sees one consistent snapshot.
type base struct {
	url       string
	srv       *http.Server
	serveDone chan struct{}
	inflight  sync.WaitGroup

	// faultBody writes the owner's body for an injected status fault.
	faultBody func(w http.ResponseWriter, r *http.Request, status int)

	mu       sync.Mutex
	closed   bool
	closing  chan struct{} // closed by Close: wakes sleeping handlers
	changed  chan struct{} // closed and replaced on every state change
	requests int

	failStatus     int
	failUntil      time.Time
	failNextN      int
	failNextStatus int
	failNextRetry  time.Duration
	resetN         int
	latency        time.Duration

	rateLimit  int
	rateWindow time.Duration
	rateHits   map[string][]time.Time
}

// start listens on a fresh loopback port and serves h. It panics when no port
// is free, as httptest.NewServer does: a fake that cannot listen is a broken
// test environment, not an error to handle. httptest itself is avoided
// because importing it registers a global command-line flag in any binary
// that links the fakes.
func (b *base) start(h http.HandlerFunc) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("fakes: listen on loopback: %v", err))
	}
	b.url = "http://" + ln.Addr().String()
	b.closing = make(chan struct{})
	b.changed = make(chan struct{})
	b.serveDone = make(chan struct{})
	b.srv = &http.Server{
		Handler:           b.wrap(h),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		defer close(b.serveDone)
		_ = b.srv.Serve(ln) // returns http.ErrServerClosed on Close
	}()
}

// wrap counts the request, applies the fault schedule and tracks the handler
// so Close can wait for it.
func (b *base) wrap(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			http.Error(w, "server closing", http.StatusServiceUnavailable)
			return
		}
		b.inflight.Add(1)
		defer b.inflight.Done()
		b.requests++
		f := b.nextFaultLocked(time.Now())
		b.notifyLocked()
		b.mu.Unlock()

		if f.latency > 0 && !b.sleep(r.Context(), f.latency) {
			return // client gave up or the fake is closing: nobody to answer
		}
		switch f.kind {
		case faultReset:
			resetConn(w, r)
		case faultStatus:
			if f.retryAfter > 0 {
				w.Header().Set("Retry-After", retryAfterSeconds(f.retryAfter))
			}
			b.faultBody(w, r, f.status)
		default:
			h(w, r)
		}
	})
}

// nextFaultLocked consumes the fault schedule for one request. Resets win
// over FailNext, which wins over FailFor.
func (b *base) nextFaultLocked(now time.Time) fault {
	f := fault{latency: b.latency}
	switch {
	case b.resetN > 0:
		b.resetN--
		f.kind = faultReset
	case b.failNextN > 0:
		b.failNextN--
		f.kind, f.status = faultStatus, b.failNextStatus
		if b.failNextStatus == http.StatusTooManyRequests {
			f.retryAfter = b.failNextRetry
		}
	case b.failStatus != 0 && now.Before(b.failUntil):
		f.kind, f.status = faultStatus, b.failStatus
		if b.failStatus == http.StatusTooManyRequests {
			// A real 429 says when to come back: the end of the outage.
			f.retryAfter = b.failUntil.Sub(now)
		}
	}
	return f
}

// sleep waits d, or less if ctx ends or the fake closes; it reports whether
// the full delay passed.
func (b *base) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-b.closing:
		return false
	}
}

// resetConn drains the request and closes the connection with SO_LINGER 0, so
// the client reads a TCP RST ("connection reset by peer") instead of any
// response: the request may or may not have been processed, as in a real
// network failure.
func resetConn(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("fakes: ResponseWriter cannot hijack") // HTTP/1.1 server: always can
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// retryAfterSeconds renders d as the delay-seconds form of Retry-After,
// rounded up and at least 1: slack-go parses it as an integer.
func retryAfterSeconds(d time.Duration) string {
	s := int64(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(s, 10)
}

// allowLocked applies the sliding-window rate limit for key; when the limit
// is hit it returns false and how long until a slot frees.
func (b *base) allowLocked(key string, now time.Time) (bool, time.Duration) {
	if b.rateLimit <= 0 {
		return true, 0
	}
	if b.rateHits == nil {
		b.rateHits = map[string][]time.Time{}
	}
	hits := b.rateHits[key]
	cut := 0
	for cut < len(hits) && !hits[cut].After(now.Add(-b.rateWindow)) {
		cut++
	}
	hits = hits[cut:]
	if len(hits) >= b.rateLimit {
		b.rateHits[key] = hits
		return false, hits[0].Add(b.rateWindow).Sub(now)
	}
	b.rateHits[key] = append(hits, now)
	return true, 0
}

// notifyLocked wakes every waiter.
func (b *base) notifyLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// waitUntil blocks until cond holds, ctx ends or the fake closes. cond is
// called without the lock held, so it may call the fake's accessors.
func (b *base) waitUntil(ctx context.Context, cond func() bool) error {
	for {
		// Take the channel before checking cond, so a change between the
		// check and the select still wakes us.
		b.mu.Lock()
		ch, closed := b.changed, b.closed
		b.mu.Unlock()
		if cond() {
			return nil
		}
		if closed {
			return ErrClosed
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

func (b *base) close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	close(b.closing)
	b.notifyLocked()
	b.mu.Unlock()
	_ = b.srv.Close() // closes the listener and every connection
	b.inflight.Wait() // handlers woke on closing; wait for them to return
	<-b.serveDone
}

func (b *base) failFor(status int, d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if d <= 0 {
		b.failStatus, b.failUntil = 0, time.Time{}
		return
	}
	b.failStatus, b.failUntil = status, time.Now().Add(d)
}

func (b *base) failNext(n, status int, retryAfter time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failNextN, b.failNextStatus, b.failNextRetry = max(n, 0), status, retryAfter
}

func (b *base) setLatency(d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.latency = max(d, 0)
}

func (b *base) resetNext(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.resetN = max(n, 0)
}

func (b *base) heal() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failStatus, b.failUntil = 0, time.Time{}
	b.failNextN, b.failNextStatus, b.failNextRetry = 0, 0, 0
	b.resetN, b.latency = 0, 0
}

func (b *base) setRateLimit(n int, window time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n <= 0 || window <= 0 {
		b.rateLimit, b.rateWindow = 0, 0
	} else {
		b.rateLimit, b.rateWindow = n, window
	}
	b.rateHits = nil
}

func (b *base) requestCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.requests
}

// cloneJSON deep-copies a value decoded from JSON, so callers of the
// accessors cannot alter the fake's records (or race with them).
func cloneJSON(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return cloneMap(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = cloneJSON(e)
		}
		return out
	default:
		return v // strings, json.Number, bool, nil: immutable
	}
}

func cloneMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = cloneJSON(v)
	}
	return out
}

func cloneMaps(ms []map[string]any) []map[string]any {
	if ms == nil {
		return nil
	}
	out := make([]map[string]any, len(ms))
	for i, m := range ms {
		out[i] = cloneMap(m)
	}
	return out
}
