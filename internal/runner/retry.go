package runner

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prober-dev/prober/internal/assert"
	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/result"
)

// try makes one request of a step, tried again as its retry: says while
// it fails in a class retried: a 429 or 5xx the step does not expect, a
// refused connection, a timeout. Every try counts in s.Attempts, every
// one after the first in s.Retries. limit is when the step must be done
// (its share of the flow timeout, or until's within). note, when set,
// says why a retry was given up early (a Retry-After past limit).
func (r *run) try(b *bound, st *config.Step, exec Executor, s *result.Step, limit time.Time) (class result.Class, msg, note string) {
	for n := 1; ; n++ {
		s.Attempts++
		// HTTPStatus is cleared for the attempt so that it shows this
		// attempt's answer (an earlier one's otherwise), and put back
		// when it got none, as the step reported before.
		prev := s.HTTPStatus
		s.HTTPStatus = 0
		class, msg = r.attempt(b, st, exec, s)
		r.logAttempt(s, class, n-1)
		if s.HTTPStatus == 0 {
			s.HTTPStatus = prev
		}
		rt := st.Retry
		if rt == nil || n >= rt.Attempts {
			return class, msg, ""
		}
		rc := r.retryClass(st, class)
		if rc == "" || !rt.Retries(string(rc)) || st.Kind == "" && !rt.NonIdempotent && !config.IdempotentMethod(st.Method) {
			return class, msg, ""
		}
		wait := backoff(rt, n)
		ra, asked := r.retryAfter(time.Now())
		if asked {
			wait = max(wait, ra)
		}
		left := time.Until(limit)
		if dl, ok := b.Deadline(); ok {
			left = min(left, time.Until(dl))
		}
		if asked && ra > left {
			return class, msg, fmt.Sprintf("%s: the server asked to wait %s (Retry-After) before trying again, more than the %s left of the step; not retried",
				rc, ra.Round(time.Second), max(left, 0).Round(time.Millisecond))
		}
		if wait >= left || !sleep(b.context(), wait) {
			return class, msg, "" // no time for another try
		}
		s.Retries++
	}
}

// retryClass is the class a retry looks at: the attempt's failure, or for
// a response the class its status fails with (429, 5xx) unless the step's
// status expectations accept it (a step expecting 503 is not retried on it).
func (r *run) retryClass(st *config.Step, class result.Class) result.Class {
	if class != "" {
		return class
	}
	status := r.resp.Status
	if status < 400 { // and 0: no response
		return ""
	}
	if st.StatusChecked && statusAccepted(st.Expect, &r.resp) {
		return ""
	}
	return StatusClass(status)
}

// statusAccepted reports whether every status expectation of es holds.
func statusAccepted(es []*assert.Expectation, resp *assert.Response) bool {
	for _, e := range es {
		if e.Sources()&assert.SourceStatus == 0 {
			continue
		}
		if _, ok := e.Check(resp); !ok {
			return false
		}
	}
	return true
}

// backoff is the wait before retry n (1 for the first): exponential from
// rt.Backoff, capped at rt.MaxBackoff, with full jitter so that probes
// that failed together do not come back together.
func backoff(rt *config.Retry, n int) time.Duration {
	d := rt.Backoff
	for i := 1; i < n && d < rt.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, rt.MaxBackoff)
	return rand.N(d + 1)
}

// retryAfter is the Retry-After of the last response when it is a 429 or
// 503 (RFC 9110 10.2.3): delay-seconds or an HTTP-date, relative to now.
func (r *run) retryAfter(now time.Time) (time.Duration, bool) {
	if r.resp.Status != http.StatusTooManyRequests && r.resp.Status != http.StatusServiceUnavailable {
		return 0, false
	}
	return parseRetryAfter(r.resp.Header.Get("Retry-After"), now)
}

func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// logAttempt records the attempt that just ended (r.x's) for the step's
// attempt spans. The first is kept in the run, not the step: a step of one
// attempt is its own record, and only a second attempt makes a log, of
// the last result.MaxAttemptLog.
func (r *run) logAttempt(s *result.Step, class result.Class, resend int) {
	a := result.Attempt{Start: r.x.start, Duration: time.Since(r.x.start), HTTPStatus: int32(s.HTTPStatus),
		Resend: int32(resend), Class: class, Timings: s.Timings}
	if a.Class == "" && s.HTTPStatus >= 400 {
		a.Class = StatusClass(s.HTTPStatus)
	}
	if s.Attempts == 1 {
		r.first = a
		return
	}
	if s.AttemptLog == nil {
		s.AttemptLog = append(make([]result.Attempt, 0, 4), r.first)
	}
	switch l := s.AttemptLog; {
	case len(l) == result.MaxAttemptLog:
		s.AttemptLog = append(l[:0], l[1:]...)
	case len(l) == cap(l): // grown by hand: append would round past the bound
		s.AttemptLog = append(make([]result.Attempt, 0, min(2*cap(l), result.MaxAttemptLog)), l...)
	}
	s.AttemptLog = append(s.AttemptLog, a)
}
