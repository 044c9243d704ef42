package runner

import (
	"crypto/tls"
	"net/http/httptrace"
	"sync"
	"time"

	"github.com/prober-dev/prober/internal/result"
)

// timing records the phases of one attempt through httptrace. Hooks can fire
// concurrently (happy-eyeballs dials, HTTP/2), so every field is behind mu.
// One timing lives for a whole run and is reset per attempt, so the
// ClientTrace and its closures are allocated once per run, not per request.
type timing struct {
	mu    sync.Mutex
	p     phases
	trace *httptrace.ClientTrace
}

type phases struct {
	start                   time.Time
	dnsStart, dnsDone       time.Time
	connStart, connDone     time.Time
	tlsStart, tlsDone       time.Time
	wrote, firstByte        time.Time
	dns, connect, handshake time.Duration
	dnsErr                  bool
	connected               bool // a connection was obtained (new or reused)
	reused                  bool
}

func newTiming() *timing {
	t := &timing{}
	t.trace = &httptrace.ClientTrace{
		DNSStart: func(httptrace.DNSStartInfo) { t.mu.Lock(); t.p.dnsStart = time.Now(); t.mu.Unlock() },
		DNSDone: func(i httptrace.DNSDoneInfo) {
			t.mu.Lock()
			t.p.dnsDone = time.Now()
			t.p.dns += t.p.dnsDone.Sub(t.p.dnsStart)
			t.p.dnsErr = i.Err != nil
			t.mu.Unlock()
		},
		ConnectStart: func(string, string) {
			t.mu.Lock()
			if t.p.connStart.IsZero() || !t.p.connDone.IsZero() {
				t.p.connStart = time.Now()
			}
			t.mu.Unlock()
		},
		ConnectDone: func(_, _ string, err error) {
			t.mu.Lock()
			if err == nil && !t.p.connStart.IsZero() {
				t.p.connDone = time.Now()
				t.p.connect += t.p.connDone.Sub(t.p.connStart)
			}
			t.mu.Unlock()
		},
		TLSHandshakeStart: func() { t.mu.Lock(); t.p.tlsStart = time.Now(); t.mu.Unlock() },
		TLSHandshakeDone: func(tls.ConnectionState, error) {
			t.mu.Lock()
			t.p.tlsDone = time.Now()
			t.p.handshake += t.p.tlsDone.Sub(t.p.tlsStart)
			t.mu.Unlock()
		},
		GotConn: func(i httptrace.GotConnInfo) {
			t.mu.Lock()
			t.p.connected = true
			t.p.reused = i.Reused
			t.mu.Unlock()
		},
		WroteRequest:         func(httptrace.WroteRequestInfo) { t.mu.Lock(); t.p.wrote = time.Now(); t.mu.Unlock() },
		GotFirstResponseByte: func() { t.mu.Lock(); t.p.firstByte = time.Now(); t.mu.Unlock() },
	}
	return t
}

// reset prepares for a new attempt starting now.
func (t *timing) reset(now time.Time) {
	t.mu.Lock()
	t.p = phases{start: now}
	t.mu.Unlock()
}

// snapshot returns the phases, with end the time the body was fully read.
func (t *timing) snapshot(end time.Time) result.Timings {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := result.Timings{DNS: t.p.dns, Connect: t.p.connect, TLS: t.p.handshake, Reused: t.p.reused}
	if !t.p.firstByte.IsZero() {
		r.FirstByte = t.p.firstByte.Sub(t.p.start)
		if !t.p.wrote.IsZero() {
			r.Processing = t.p.firstByte.Sub(t.p.wrote)
		}
		if end.After(t.p.firstByte) {
			r.Transfer = end.Sub(t.p.firstByte)
		}
	}
	return r
}

// state records in st what had happened when an attempt failed, for
// classification.
func (t *timing) state(st *attemptState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st.dnsStarted, st.dnsDone = !t.p.dnsStart.IsZero(), !t.p.dnsDone.IsZero()
	st.connected = t.p.connected || !t.p.connDone.IsZero()
	st.tlsStarted, st.tlsDone = !t.p.tlsStart.IsZero(), !t.p.tlsDone.IsZero()
	st.gotFirstByte = !t.p.firstByte.IsZero()
}
