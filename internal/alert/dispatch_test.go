package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/prober-dev/prober/internal/config"
)

// syncBuffer collects log output from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// lines returns the JSON log records whose msg is msg ("" for all).
func (s *syncBuffer) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if msg == "" || m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func testLogger(buf *syncBuffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// call is one Send as a scriptNotifier saw it.
type call struct {
	label  string // Page.Summary: identifies the notification in tests
	kind   Kind
	key    string
	thread string
	start  time.Time
	err    error
}

// scriptNotifier answers Send with fn (nil: success) and records calls.
type scriptNotifier struct {
	name string
	fn   func(ctx context.Context, p *Page, thread string, attempt int) (string, error)

	mu       sync.Mutex
	calls    []call
	attempts map[string]int
}

func newScript(name string, fn func(ctx context.Context, p *Page, thread string, attempt int) (string, error)) *scriptNotifier {
	return &scriptNotifier{name: name, fn: fn, attempts: map[string]int{}}
}

func (s *scriptNotifier) Name() string              { return s.name }
func (s *scriptNotifier) Type() config.NotifierType { return "script" }

func (s *scriptNotifier) Send(ctx context.Context, p *Page, thread string) (string, error) {
	start := time.Now()
	s.mu.Lock()
	s.attempts[p.Summary]++
	a := s.attempts[p.Summary]
	s.mu.Unlock()
	var th string
	var err error
	if s.fn != nil {
		th, err = s.fn(ctx, p, thread, a)
	}
	s.mu.Lock()
	s.calls = append(s.calls, call{label: p.Summary, kind: p.Kind, key: p.DedupKey, thread: thread, start: start, err: err})
	s.mu.Unlock()
	return th, err
}

func (s *scriptNotifier) allCalls() []call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]call(nil), s.calls...)
}

// delivered lists the labels of successful sends, in order.
func (s *scriptNotifier) delivered() []string {
	var out []string
	for _, c := range s.allCalls() {
		if c.err == nil {
			out = append(out, c.label)
		}
	}
	return out
}

func (s *scriptNotifier) attemptsOf(label string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts[label]
}

type harness struct {
	t      *testing.T
	db     *DB
	path   string
	logs   *syncBuffer
	reg    *prometheus.Registry
	d      *Dispatcher
	cancel context.CancelFunc
	done   chan struct{}
}

func fastOptions() DispatcherOptions {
	return DispatcherOptions{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, PollInterval: 20 * time.Millisecond, SendTimeout: 5 * time.Second}
}

func newHarness(t *testing.T, o DispatcherOptions, ns ...Notifier) *harness {
	t.Helper()
	h := &harness{t: t, path: filepath.Join(t.TempDir(), "alerts.db"), logs: &syncBuffer{}, reg: prometheus.NewRegistry()}
	h.open()
	h.dispatcher(o, ns...)
	t.Cleanup(func() {
		h.stop()
		_ = h.db.Close()
	})
	return h
}

func (h *harness) open() {
	db, err := OpenDB(h.path)
	if err != nil {
		h.t.Fatal(err)
	}
	db.bolt.NoSync = true // see openNoSync: what is sent when is under test, not fsync
	h.db = db
}

func (h *harness) dispatcher(o DispatcherOptions, ns ...Notifier) *Dispatcher {
	if o.Logger == nil {
		o.Logger = testLogger(h.logs)
	}
	if o.Registerer == nil {
		o.Registerer = h.reg
	}
	h.d = NewDispatcher(h.db, ns, o)
	return h.d
}

func (h *harness) run() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan struct{})
	go func() {
		defer close(h.done)
		h.d.Run(ctx)
	}()
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		h.t.Fatal("Run did not return after cancel")
	}
	h.cancel = nil
}

func (h *harness) enqueue(notifier, key string, kind Kind, label string) *Notification {
	h.t.Helper()
	n := &Notification{Notifier: notifier, AlertKey: key, Page: Page{Kind: kind, DedupKey: key, Rule: "r", Severity: "critical", Summary: label}}
	if err := h.db.Update(func(tx *Tx) error { return tx.Enqueue(n) }); err != nil {
		h.t.Fatal(err)
	}
	return n
}

func (h *harness) pending() []*Notification {
	var out []*Notification
	if err := h.db.View(func(tx *Tx) error {
		var err error
		out, err = tx.Pending()
		return err
	}); err != nil {
		h.t.Fatal(err)
	}
	return out
}

func (h *harness) dead() []*Notification {
	var out []*Notification
	if err := h.db.View(func(tx *Tx) error {
		var err error
		out, err = tx.Dead()
		return err
	}); err != nil {
		h.t.Fatal(err)
	}
	return out
}

func (h *harness) thread(notifier, key string) string {
	var th string
	_ = h.db.View(func(tx *Tx) error {
		th, _ = tx.Thread(notifier, key)
		return nil
	})
	return th
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				return m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				return m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return -1
}

var errUnavailable = &DeliveryError{Status: 503, Msg: "Service Unavailable"}

// TestNotificationSeriesFromTheStart: before anything is sent, every
// notifier has its prober_notifications_total series at 0, for each kind
// and outcome, so that a fresh dashboard shows 0 and the first failure is
// an increase; a notifier added by a reload gets them too.
func TestNotificationSeriesFromTheStart(t *testing.T) {
	ok := func(ctx context.Context, p *Page, thread string, attempt int) (string, error) { return "", nil }
	h := newHarness(t, DispatcherOptions{}, newScript("pd", ok))
	check := func(notifier string) {
		t.Helper()
		for _, kind := range []string{"trigger", "reminder", "resolve"} {
			for _, outcome := range []string{"sent", "retry", "failed"} {
				labels := map[string]string{"notifier": notifier, "kind": kind, "result": outcome}
				if got := metricValue(t, h.reg, "prober_notifications_total", labels); got != 0 {
					t.Errorf("%v = %v, want a series at 0", labels, got)
				}
			}
		}
	}
	check("pd")
	h.dispatcher(DispatcherOptions{}, newScript("pd", ok), newScript("slack", ok))
	check("slack")
}

func TestDispatchOrderPerAlertKeyUnderFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newScript("pd", func(ctx context.Context, p *Page, thread string, attempt int) (string, error) {
			if p.Summary == "A-trigger" && attempt <= 3 {
				return "", &DeliveryError{Status: 503, Msg: "busy", RetryAfter: 100 * time.Millisecond}
			}
			return "", nil
		})
		h := newHarness(t, fastOptions(), n)
		h.enqueue("pd", "A", Trigger, "A-trigger")
		h.enqueue("pd", "A", Resolve, "A-resolve")
		h.enqueue("pd", "B", Trigger, "B-trigger")
		h.enqueue("pd", "B", Resolve, "B-resolve")
		h.run()
		waitFor(t, 10*time.Second, "4 deliveries", func() bool { return len(n.delivered()) == 4 })

		got := strings.Join(n.delivered(), ",")
		if got != "B-trigger,B-resolve,A-trigger,A-resolve" {
			t.Errorf("delivered %s; want B's pair (not held up by A's backoff), then A's trigger before its resolve", got)
		}
		// The resolve was never even attempted while its trigger was backing off.
		calls := n.allCalls()
		for i, c := range calls {
			if c.label == "A-resolve" {
				for _, prev := range calls[:i] {
					if prev.label == "A-trigger" && prev.err == nil {
						goto ok
					}
				}
				t.Fatalf("A-resolve attempted at call %d before A-trigger succeeded", i)
			ok:
			}
		}
		if a := n.attemptsOf("A-trigger"); a != 4 {
			t.Errorf("A-trigger attempts = %d, want 4", a)
		}
		if a := n.attemptsOf("A-resolve"); a != 1 {
			t.Errorf("A-resolve attempts = %d, want 1", a)
		}
		waitFor(t, 5*time.Second, "empty outbox", func() bool { return len(h.pending()) == 0 })
	})
}

func TestDispatchHangingKeyDoesNotBlockOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newScript("pd", func(ctx context.Context, p *Page, thread string, attempt int) (string, error) {
			if p.Summary == "A" && attempt == 1 {
				<-ctx.Done() // hangs until the per-attempt timeout
				return "", ctx.Err()
			}
			return "", nil
		})
		o := fastOptions()
		o.SendTimeout = 500 * time.Millisecond
		h := newHarness(t, o, n)
		h.enqueue("pd", "A", Trigger, "A")
		h.run()
		waitFor(t, 5*time.Second, "A in flight", func() bool { return n.attemptsOf("A") == 1 })
		start := time.Now()
		h.enqueue("pd", "B", Trigger, "B")
		h.d.Kick()
		waitFor(t, 5*time.Second, "B delivered", func() bool { return n.attemptsOf("B") == 1 && len(n.delivered()) >= 1 })
		if d := time.Since(start); d > 400*time.Millisecond {
			t.Errorf("B took %v while A hung", d)
		}
		waitFor(t, 5*time.Second, "A delivered after its timeout", func() bool { return len(n.delivered()) == 2 })
		if got := strings.Join(n.delivered(), ","); got != "B,A" {
			t.Errorf("delivered %s", got)
		}
	})
}

func TestDispatchLongOutageDelaysNeverDrops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const failures = 200
		n := newScript("pd", func(ctx context.Context, p *Page, thread string, attempt int) (string, error) {
			if attempt <= failures {
				return "", errUnavailable
			}
			return "", nil
		})
		o := fastOptions()
		o.MaxBackoff = 2 * time.Millisecond
		h := newHarness(t, o, n)
		h.enqueue("pd", "A", Trigger, "A-trigger")
		h.run()
		waitFor(t, 30*time.Second, "delivery after the outage", func() bool { return len(n.delivered()) == 1 })
		h.stop()
		if a := n.attemptsOf("A-trigger"); a != failures+1 {
			t.Errorf("attempts = %d, want %d", a, failures+1)
		}
		if got := metricValue(t, h.reg, "prober_notifications_total", map[string]string{"notifier": "pd", "kind": "trigger", "result": "retry"}); got != failures {
			t.Errorf("retry count = %v", got)
		}
		if got := metricValue(t, h.reg, "prober_notifications_total", map[string]string{"notifier": "pd", "kind": "trigger", "result": "sent"}); got != 1 {
			t.Errorf("sent count = %v", got)
		}
		sent := h.logs.lines(t, "page_sent")
		if len(sent) != 1 || sent[0]["attempts"] != float64(failures+1) || sent[0]["level"] != "INFO" {
			t.Errorf("page_sent logs = %v", sent)
		}
		retries := h.logs.lines(t, "page_retry")
		if len(retries) != failures {
			t.Fatalf("%d page_retry lines", len(retries))
		}
		last := retries[len(retries)-1]
		if last["level"] != "WARN" || last["attempt"] != float64(failures) || last["next_attempt"] == nil || last["status"] != float64(503) || last["dedup_key"] != "A" {
			t.Errorf("page_retry = %v", last)
		}
	})
}

func TestDispatchHonoursRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const ra = 400 * time.Millisecond
		n := newScript("pd", func(ctx context.Context, p *Page, thread string, attempt int) (string, error) {
			if attempt == 1 {
				return "", &DeliveryError{Status: 429, RetryAfter: ra, Msg: "slow down"}
			}
			return "", nil
		})
		h := newHarness(t, fastOptions(), n) // backoff alone would be ~1ms
		h.enqueue("pd", "A", Trigger, "A")
		h.run()
		waitFor(t, 5*time.Second, "delivery", func() bool { return len(n.delivered()) == 1 })
		calls := n.allCalls()
		if gap := calls[1].start.Sub(calls[0].start); gap < ra || gap > ra+time.Second {
			t.Errorf("gap between attempts %v, want >= %v", gap, ra)
		}
	})
}

func TestBackoff(t *testing.T) {
	d := NewDispatcher(nil, nil, DispatcherOptions{MinBackoff: time.Second, MaxBackoff: time.Minute})
	tests := []struct {
		attempts int
		de       *DeliveryError
		lo, hi   time.Duration
	}{
		{1, nil, 500 * time.Millisecond, time.Second},
		{2, nil, time.Second, 2 * time.Second},
		{3, nil, 2 * time.Second, 4 * time.Second},
		{7, nil, 30 * time.Second, time.Minute},
		{1000, nil, 30 * time.Second, time.Minute},
		{1, &DeliveryError{RetryAfter: 90 * time.Second}, 90 * time.Second, 90 * time.Second},
		{1, &DeliveryError{RetryAfter: 3 * time.Hour}, time.Hour, time.Hour},
		{5, &DeliveryError{Status: 503}, 8 * time.Second, 16 * time.Second},
	}
	for _, tt := range tests {
		for range 50 {
			if got := d.backoff(tt.attempts, tt.de); got < tt.lo || got > tt.hi {
				t.Errorf("backoff(%d, %+v) = %v, want in [%v, %v]", tt.attempts, tt.de, got, tt.lo, tt.hi)
				break
			}
		}
	}
}

func TestDispatchPermanentFailureGoesToDeadLetters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const pdText = "Event object is invalid: 'payload.summary' is missing or blank"
		n := newScript("pd", func(ctx context.Context, p *Page, thread string, attempt int) (string, error) {
			if p.Summary == "A-trigger" {
				return "", &DeliveryError{Permanent: true, Status: 400, Msg: pdText}
			}
			return "", nil
		})
		h := newHarness(t, fastOptions(), n)
		h.enqueue("pd", "A", Trigger, "A-trigger")
		h.enqueue("pd", "A", Resolve, "A-resolve")
		h.run()
		waitFor(t, 5*time.Second, "the resolve", func() bool { return len(n.delivered()) == 1 })
		h.stop()
		if a := n.attemptsOf("A-trigger"); a != 1 {
			t.Errorf("permanent failure attempted %d times", a)
		}
		dead := h.dead()
		if len(dead) != 1 || dead[0].Page.Summary != "A-trigger" || dead[0].Attempts != 1 || !strings.Contains(dead[0].LastError, pdText) {
			t.Fatalf("dead letters = %+v", dead)
		}
		if p := h.pending(); len(p) != 0 {
			t.Errorf("pending = %+v", p)
		}
		failed := h.logs.lines(t, "page_failed")
		if len(failed) != 1 {
			t.Fatalf("page_failed lines: %v", failed)
		}
		f := failed[0]
		if f["level"] != "ERROR" || f["notifier"] != "pd" || f["kind"] != "trigger" || f["dedup_key"] != "A" || !strings.Contains(fmt.Sprint(f["error"]), pdText) {
			t.Errorf("page_failed = %v", f)
		}
		if got := metricValue(t, h.reg, "prober_notifications_total", map[string]string{"notifier": "pd", "kind": "trigger", "result": "failed"}); got != 1 {
			t.Errorf("failed count = %v", got)
		}
		if s := h.d.Stats()["pd"]; s.Dead != 1 || s.Pending != 0 {
			t.Errorf("Stats = %+v", s)
		}
	})
}

func TestDispatchThreadMemory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newScript("slack", func(ctx context.Context, p *Page, thread string, attempt int) (string, error) {
			switch p.Kind {
			case Trigger:
				return "C1|100.1", nil
			case Reminder:
				if thread != "C1|100.1" {
					return thread, &DeliveryError{Permanent: true, Msg: "reminder without the thread: " + thread}
				}
			}
			return thread, nil
		})
		h := newHarness(t, fastOptions(), n)
		h.run()
		h.enqueue("slack", "A", Trigger, "A-trigger")
		h.d.Kick()
		waitFor(t, 5*time.Second, "trigger", func() bool { return len(n.delivered()) == 1 })
		waitFor(t, 5*time.Second, "thread saved", func() bool { return h.thread("slack", "A") == "C1|100.1" && len(h.pending()) == 0 })

		h.enqueue("slack", "A", Reminder, "A-reminder")
		h.enqueue("slack", "A", Resolve, "A-resolve")
		h.d.Kick()
		waitFor(t, 5*time.Second, "reminder and resolve", func() bool { return len(n.delivered()) == 3 })
		calls := n.allCalls()
		if calls[0].thread != "" || calls[1].thread != "C1|100.1" || calls[2].thread != "C1|100.1" {
			t.Errorf("threads passed: %q %q %q", calls[0].thread, calls[1].thread, calls[2].thread)
		}
		waitFor(t, 5*time.Second, "thread cleared on resolve", func() bool { return h.thread("slack", "A") == "" })
	})
}

func TestDispatchSurvivesInterruptedDelivery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		entered := make(chan struct{}, 1)
		first := newScript("pd", func(ctx context.Context, p *Page, thread string, attempt int) (string, error) {
			if p.Summary == "A1" {
				entered <- struct{}{}
				<-ctx.Done() // still in flight when the process "dies"
				return "", ctx.Err()
			}
			return "", nil
		})
		h := newHarness(t, fastOptions(), first)
		for _, l := range []string{"A1", "A2", "A3"} {
			h.enqueue("pd", "A", Trigger, l)
		}
		h.enqueue("pd", "B", Trigger, "B1")
		h.enqueue("pd", "B", Resolve, "B2")
		h.run()
		<-entered
		h.stop()
		if err := h.db.Close(); err != nil {
			t.Fatal(err)
		}

		h.open()
		second := newScript("pd", nil)
		h.dispatcher(fastOptions(), second)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.d.Drain(ctx); err != nil {
			t.Fatalf("Drain: %v", err)
		}
		count := map[string]int{}
		for _, l := range append(first.delivered(), second.delivered()...) {
			count[l]++
		}
		for _, l := range []string{"A1", "A2", "A3", "B1", "B2"} {
			if count[l] != 1 {
				t.Errorf("%s delivered %d times, want once", l, count[l])
			}
		}
		var order []string
		for _, l := range second.delivered() {
			if strings.HasPrefix(l, "A") {
				order = append(order, l)
			}
		}
		if got := strings.Join(order, ","); got != "A1,A2,A3" {
			t.Errorf("A delivered after restart in order %s", got)
		}
		if len(h.logs.lines(t, "page_retry")) != 0 {
			t.Error("an interrupted attempt was counted as a retry")
		}
	})
}

func TestDispatchCrashBetweenSendAndCommitSendsAtMostOnceMore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var h *harness
		first := newScript("pd", func(ctx context.Context, p *Page, thread string, attempt int) (string, error) {
			if p.Summary == "A1" {
				// The service took it; the process dies before the commit.
				if err := h.db.Close(); err != nil {
					return "", err
				}
			}
			return "", nil
		})
		h = newHarness(t, fastOptions(), first)
		h.enqueue("pd", "A", Trigger, "A1")
		h.enqueue("pd", "A", Resolve, "A2")
		h.run()
		waitFor(t, 5*time.Second, "A1 sent", func() bool { return len(first.delivered()) == 1 })
		waitFor(t, 5*time.Second, "the failed commit logged", func() bool { return len(h.logs.lines(t, "outbox_commit_failed")) > 0 })
		time.Sleep(50 * time.Millisecond) // a few more polls: nothing must be sent again
		h.stop()
		if got := strings.Join(first.delivered(), ","); got != "A1" {
			t.Fatalf("before the restart: %s", got)
		}

		h.open()
		second := newScript("pd", nil)
		h.dispatcher(fastOptions(), second)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.d.Drain(ctx); err != nil {
			t.Fatal(err)
		}
		// A1's commit never happened: it goes out once more (the documented
		// duplicate), then A2, once.
		if got := strings.Join(second.delivered(), ","); got != "A1,A2" {
			t.Errorf("after the restart: %s, want A1,A2", got)
		}
	})
}

func TestDrain(t *testing.T) {
	t.Run("delivers everything, retrying", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n := newScript("pd", func(ctx context.Context, p *Page, thread string, attempt int) (string, error) {
				if attempt <= 2 {
					return "", errUnavailable
				}
				return "", nil
			})
			o := fastOptions()
			o.MinBackoff, o.MaxBackoff = 10*time.Millisecond, 20*time.Millisecond
			h := newHarness(t, o, n)
			for i := range 6 {
				h.enqueue("pd", fmt.Sprint("K", i%3), Trigger, fmt.Sprint("N", i))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := h.d.Drain(ctx); err != nil {
				t.Fatal(err)
			}
			if len(n.delivered()) != 6 || len(h.pending()) != 0 {
				t.Errorf("delivered %v, pending %d", n.delivered(), len(h.pending()))
			}
		})
	})
	t.Run("returns what is left when ctx ends", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n := newScript("pd", func(ctx context.Context, p *Page, thread string, attempt int) (string, error) {
				return "", errUnavailable
			})
			h := newHarness(t, fastOptions(), n)
			h.enqueue("pd", "A", Trigger, "A")
			h.enqueue("pd", "B", Trigger, "B")
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			err := h.d.Drain(ctx)
			if err == nil || !strings.Contains(err.Error(), "2 notification(s) undelivered") || !strings.Contains(err.Error(), "pd: 2") || !strings.Contains(err.Error(), "503") {
				t.Errorf("Drain = %v", err)
			}
			if n.attemptsOf("A") < 2 {
				t.Errorf("Drain did not retry: %d attempts", n.attemptsOf("A"))
			}
		})
	})
	t.Run("does not wait for a retry past the deadline", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n := newScript("pd", func(ctx context.Context, p *Page, thread string, attempt int) (string, error) {
				return "", &DeliveryError{Status: 429, RetryAfter: time.Hour, Msg: "throttled"}
			})
			h := newHarness(t, fastOptions(), n)
			h.enqueue("pd", "A", Trigger, "A")
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			start := time.Now()
			err := h.d.Drain(ctx)
			if err == nil || time.Since(start) > 5*time.Second {
				t.Errorf("Drain = %v after %v", err, time.Since(start))
			}
		})
	})
	t.Run("alongside Run", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n := newScript("pd", func(ctx context.Context, p *Page, thread string, attempt int) (string, error) {
				time.Sleep(2 * time.Millisecond)
				return "", nil
			})
			h := newHarness(t, fastOptions(), n)
			for i := range 20 {
				h.enqueue("pd", fmt.Sprint("K", i%4), Trigger, fmt.Sprint("N", i))
			}
			h.run()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := h.d.Drain(ctx); err != nil {
				t.Fatal(err)
			}
			h.stop()
			seen := map[string]int{}
			for _, l := range n.delivered() {
				seen[l]++
			}
			for i := range 20 {
				if c := seen[fmt.Sprint("N", i)]; c != 1 {
					t.Errorf("N%d delivered %d times", i, c)
				}
			}
		})
	})
}

func TestDispatchMissingNotifierWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, fastOptions(), newScript("pd", nil))
		h.enqueue("old-slack", "A", Trigger, "A")
		h.run()
		time.Sleep(150 * time.Millisecond) // several polls
		h.stop()
		if lines := h.logs.lines(t, "notifier_missing"); len(lines) != 1 || lines[0]["notifier"] != "old-slack" || lines[0]["level"] != "WARN" {
			t.Errorf("notifier_missing logs: %v", lines)
		}
		if s := h.d.Stats()["old-slack"]; s.Pending != 1 {
			t.Errorf("Stats = %+v", h.d.Stats())
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := h.d.Drain(ctx); err == nil || !strings.Contains(err.Error(), "not configured") {
			t.Errorf("Drain = %v", err)
		}

		back := newScript("old-slack", nil)
		h.dispatcher(fastOptions(), back)
		h.run()
		waitFor(t, 5*time.Second, "delivery once the notifier is back", func() bool { return len(back.delivered()) == 1 })
	})
}

func TestDispatchKickWakesWorkers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newScript("pd", nil)
		o := fastOptions()
		o.PollInterval = time.Hour
		h := newHarness(t, o, n)
		h.run()
		time.Sleep(50 * time.Millisecond) // the first look found nothing
		h.enqueue("pd", "A", Trigger, "A")
		h.d.Kick()
		waitFor(t, 2*time.Second, "delivery after Kick", func() bool { return len(n.delivered()) == 1 })
	})
}

func TestDispatchRecoversFromNotifierPanic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newScript("pd", func(ctx context.Context, p *Page, thread string, attempt int) (string, error) {
			if attempt == 1 {
				panic("boom")
			}
			return "", nil
		})
		h := newHarness(t, fastOptions(), n)
		h.enqueue("pd", "A", Trigger, "A")
		h.run()
		waitFor(t, 5*time.Second, "delivery after a panic", func() bool { return n.attemptsOf("A") == 2 && len(h.pending()) == 0 })
		if r := h.logs.lines(t, "page_retry"); len(r) != 1 || !strings.Contains(fmt.Sprint(r[0]["error"]), "panicked") {
			t.Errorf("page_retry = %v", r)
		}
	})
}

func TestDispatchMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Date(2026, 11, 23, 2, 14, 0, 0, time.UTC)
		realStart := time.Now()
		clock := func() time.Time { return t0.Add(time.Since(realStart)) } // a clock that runs, from t0
		n := newScript("pd", func(ctx context.Context, p *Page, thread string, attempt int) (string, error) {
			switch {
			case p.Summary == "retry" && attempt <= 2:
				return "", errUnavailable
			case p.Summary == "fail":
				return "", &DeliveryError{Permanent: true, Status: 400, Msg: "bad"}
			}
			return "", nil
		})
		o := fastOptions()
		o.Now = clock
		h := newHarness(t, o, n)
		h.enqueue("pd", "A", Trigger, "retry")
		h.enqueue("pd", "B", Trigger, "fail")
		h.enqueue("pd", "C", Resolve, "ok")
		old := &Notification{Notifier: "gone", AlertKey: "D", Created: t0.Add(-90 * time.Second), Page: Page{Kind: Trigger}}
		if err := h.db.Update(func(tx *Tx) error { return tx.Enqueue(old) }); err != nil {
			t.Fatal(err)
		}
		h.run()
		waitFor(t, 5*time.Second, "pd's outbox empty", func() bool { return h.d.Stats()["pd"].Pending == 0 })
		h.stop()

		for _, tt := range []struct {
			name   string
			labels map[string]string
			want   float64
		}{
			{"prober_notifications_total", map[string]string{"notifier": "pd", "kind": "trigger", "result": "retry"}, 2},
			{"prober_notifications_total", map[string]string{"notifier": "pd", "kind": "trigger", "result": "sent"}, 1},
			{"prober_notifications_total", map[string]string{"notifier": "pd", "kind": "trigger", "result": "failed"}, 1},
			{"prober_notifications_total", map[string]string{"notifier": "pd", "kind": "resolve", "result": "sent"}, 1},
			{"prober_notification_duration_seconds", map[string]string{"notifier": "pd"}, 5},
			{"prober_outbox_pending", map[string]string{"notifier": "pd"}, 0},
			{"prober_outbox_pending", map[string]string{"notifier": "gone"}, 1},
			{"prober_outbox_oldest_pending_seconds", map[string]string{"notifier": "pd"}, 0},
		} {
			if got := metricValue(t, h.reg, tt.name, tt.labels); got != tt.want {
				t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
			}
		}

		if got := metricValue(t, h.reg, "prober_outbox_oldest_pending_seconds", map[string]string{"notifier": "gone"}); got < 90 || got > 100 {
			t.Errorf("oldest pending for gone = %v, want about 90", got)
		}

		// A dispatcher rebuilt on the same registry (config reload) takes the
		// series over instead of panicking on duplicate registration.
		h.dispatcher(o, newScript("pd2", nil))
		if got := metricValue(t, h.reg, "prober_outbox_pending", map[string]string{"notifier": "pd2"}); got != 0 {
			t.Errorf("pending for the new dispatcher's notifier = %v", got)
		}
		if got := metricValue(t, h.reg, "prober_notifications_total", map[string]string{"notifier": "pd", "result": "sent", "kind": "trigger"}); got != 1 {
			t.Errorf("counter lost on rebuild: %v", got)
		}
	})
}

func TestDispatchNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		block := make(chan struct{})
		n := newScript("pd", func(ctx context.Context, p *Page, thread string, attempt int) (string, error) {
			if p.DedupKey == "hang" {
				select {
				case <-ctx.Done():
					return "", ctx.Err()
				case <-block:
				}
			}
			if attempt == 1 {
				return "", errUnavailable
			}
			return "", nil
		})
		h := newHarness(t, fastOptions(), n, newScript("slack", nil))
		for i := range 10 {
			h.enqueue("pd", fmt.Sprint("K", i), Trigger, fmt.Sprint("N", i))
		}
		h.enqueue("pd", "hang", Trigger, "hang")
		h.run()
		waitFor(t, 5*time.Second, "10 deliveries", func() bool { return len(n.delivered()) >= 10 })
		h.stop() // with "hang" still in flight
		close(block)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		_ = h.d.Drain(ctx)
		cancel()
		h.db.Close()
	}()
	waitFor(t, 5*time.Second, fmt.Sprintf("goroutines back to %d", before), func() bool { return runtime.NumGoroutine() <= before })
}

func TestDispatchDuplicateNotifierNames(t *testing.T) {
	a, b := newScript("pd", nil), newScript("pd", nil)
	h := newHarness(t, fastOptions(), a, b)
	h.enqueue("pd", "A", Trigger, "A")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.d.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if len(a.delivered()) != 1 || len(b.delivered()) != 0 {
		t.Errorf("first %v, second %v", a.delivered(), b.delivered())
	}
	if len(h.logs.lines(t, "notifier_duplicate")) != 1 {
		t.Error("duplicate not logged")
	}
}

func TestTruncation(t *testing.T) {
	for _, tt := range []struct {
		s    string
		n    int
		want string
	}{
		{"abc", 5, "abc"},
		{"abcdef", 5, "ab…"},
		{"ééé", 5, "é…"},    // é is 2 bytes, … is 3
		{"ééé", 6, "ééé"},   // fits exactly
		{"aéééé", 6, "aé…"}, // never splits a rune
		{"aéééé", 5, "a…"},
	} {
		if got := truncateBytes(tt.s, tt.n); got != tt.want {
			t.Errorf("truncateBytes(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
	if got := truncateRunes("ééééé", 3); got != "éé…" {
		t.Errorf("truncateRunes = %q", got)
	}
	if got := truncateRunes("ééé", 3); got != "ééé" {
		t.Errorf("truncateRunes = %q", got)
	}
}
