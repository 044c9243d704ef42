package runner

import (
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/result"
)

// TestAttemptLog: a step of one attempt logs none (it is its own record);
// retries and until polls log each attempt's start, status, resend count
// and class, the last result.MaxAttemptLog of them.
func TestAttemptLog(t *testing.T) {
	type want struct {
		status, resend int32
		class          result.Class
	}
	poll := func(st *config.Step, within time.Duration) *config.Step {
		st.Until = &config.Until{Expect: newStep("", "GET", "http://x/", "status == 200").Expect, Interval: 100 * time.Millisecond, Within: within}
		st.StatusChecked = true
		return st
	}
	for _, tc := range []struct {
		name     string
		step     *config.Step
		handler  func(n int, w http.ResponseWriter)
		attempts int
		log      []want // nil: no log
		gap      time.Duration
	}{
		{name: "one attempt", step: newStep("s", "GET", "http://api.test/x", "status == 200"),
			handler: func(int, http.ResponseWriter) {}, attempts: 1},
		{name: "429 then 200", step: withRetry(newStep("s", "GET", "http://api.test/x", "status == 200"), 3),
			handler: func(n int, w http.ResponseWriter) {
				if n == 1 {
					w.Header().Set("Retry-After", "1")
					w.WriteHeader(http.StatusTooManyRequests)
				}
			}, attempts: 2, log: []want{{429, 0, result.HTTP429}, {200, 1, ""}}, gap: time.Second},
		{name: "until polls 3", step: poll(newStep("s", "GET", "http://api.test/job"), 4*time.Second),
			handler: func(n int, w http.ResponseWriter) {
				if n < 3 {
					w.WriteHeader(http.StatusAccepted)
				}
			}, attempts: 3, log: []want{{202, 0, ""}, {202, 0, ""}, {200, 0, ""}}, gap: 100 * time.Millisecond},
		{name: "poll with a retried 503", step: func() *config.Step {
			st := withRetry(poll(newStep("s", "GET", "http://api.test/job"), 4*time.Second), 2)
			st.StatusChecked = false // else the until's status accepts the 503, a poll not retried
			return st
		}(),
			handler: func(n int, w http.ResponseWriter) {
				switch n {
				case 1:
					w.WriteHeader(http.StatusAccepted)
				case 2:
					w.WriteHeader(http.StatusServiceUnavailable)
				}
			}, attempts: 3, log: []want{{202, 0, ""}, {503, 0, result.HTTP5xx}, {200, 1, ""}}},
		{name: "a long poll keeps its last 16", step: poll(newStep("s", "GET", "http://api.test/job"), 10*time.Second),
			handler: func(n int, w http.ResponseWriter) {
				if n < 20 {
					w.WriteHeader(http.StatusAccepted)
				}
			}, attempts: 20, log: append(func() (l []want) {
				for range 15 {
					l = append(l, want{202, 0, ""})
				}
				return l
			}(), want{200, 0, ""}), gap: 100 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				res, times := served(t, newFlow(tc.step), func(n int, w http.ResponseWriter, _ *http.Request) { tc.handler(n, w) })
				s := res.Steps[0]
				if s.Status != result.Passed || s.Attempts != tc.attempts || len(times) != tc.attempts {
					t.Fatalf("step %s after %d attempts (%d requests), want passed after %d", s.Status, s.Attempts, len(times), tc.attempts)
				}
				if tc.log == nil {
					if s.AttemptLog != nil {
						t.Errorf("a step of one attempt logged %+v, want nothing", s.AttemptLog)
					}
					return
				}
				if len(s.AttemptLog) != len(tc.log) {
					t.Fatalf("logged %d attempts, want %d", len(s.AttemptLog), len(tc.log))
				}
				first := len(times) - len(tc.log) // the requests before fell off the log
				for i, a := range s.AttemptLog {
					w := tc.log[i]
					if a.HTTPStatus != w.status || a.Resend != w.resend || a.Class != w.class {
						t.Errorf("attempt %d: status %d resend %d class %q, want %d %d %q", i, a.HTTPStatus, a.Resend, a.Class, w.status, w.resend, w.class)
					}
					if !a.Start.Equal(times[first+i]) {
						t.Errorf("attempt %d started at %v, the server saw it at %v", i, a.Start, times[first+i])
					}
					if i > 0 && a.Start.Sub(s.AttemptLog[i-1].Start) < tc.gap {
						t.Errorf("attempt %d started %s after the one before, want at least %s", i, a.Start.Sub(s.AttemptLog[i-1].Start), tc.gap)
					}
				}
				if cap(s.AttemptLog) > result.MaxAttemptLog {
					t.Errorf("the log holds room for %d attempts, want at most %d", cap(s.AttemptLog), result.MaxAttemptLog)
				}
			})
		})
	}
}
