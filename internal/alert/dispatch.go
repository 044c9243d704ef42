package alert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Delivery semantics (what the dispatcher promises):
//
//   - At least once. A notification leaves the outbox, and the thread
//     memory Send returned is saved, in one transaction after Send succeeds.
//     A crash between Send and that commit sends it again after a restart.
//     PagerDuty folds the repeat into the same incident (same dedup key).
//     Slack can see it twice: a repeated trigger posts a second top-level
//     message (the first one's ts was never recorded, so it is never
//     updated on resolve), a repeated reminder or resolve posts its thread
//     reply twice (the resolve's in-place update is idempotent). The same
//     holds for a Send cut short by shutdown after the service acted.
//   - In order per (notifier, alert key): only the lowest ID of an alert key
//     is ever attempted, so a resolve never overtakes its trigger, even
//     while the trigger is backing off. Different alert keys are delivered
//     concurrently (up to Concurrency per notifier) and never wait for each
//     other's backoff.
//   - Retryable failures (transport errors, timeouts, 408, 429, 5xx, any
//     error that is not a permanent *DeliveryError) are retried forever with
//     exponential backoff and jitter, or after the service's Retry-After: an
//     outage of any length delays a page, it never drops it.
//   - Permanent failures go to the dead letters; the next notification of
//     the same alert key proceeds.
//   - A notification for a notifier that is not configured (the config
//     changed) stays in the outbox, is logged once, and is delivered if a
//     notifier of that name comes back.
//   - Fast recovery: while a notifier's pages wait on a backoff, its
//     service is asked every ReachInterval whether it answers (a GET that
//     sends nothing). When it answers after failing, each waiting page gets
//     one attempt at once instead of at the end of its backoff step. A
//     rushed attempt is still the one attempt of its alert key in flight,
//     so it never duplicates a page; pages a service asked to wait
//     (Retry-After) keep waiting.
//   - Drain (SIGTERM) makes one last attempt for every page whose next
//     retry falls after its deadline, rather than leaving it untried.

// DispatcherOptions tune a Dispatcher. Zero values take the defaults.
type DispatcherOptions struct {
	Logger *slog.Logger
	// Registerer receives the metrics; nil registers none.
	Registerer prometheus.Registerer
	// MinBackoff and MaxBackoff bound the exponential backoff (default 1s
	// and 5m). A Retry-After from the service is honoured in full, up to
	// an hour.
	MinBackoff, MaxBackoff time.Duration
	// Now is the clock for NextAttempt and ages (tests).
	Now func() time.Time
	// SendTimeout bounds one attempt (default 10s).
	SendTimeout time.Duration
	// PollInterval is how often workers look at the outbox without a Kick
	// (default 3s).
	PollInterval time.Duration
	// Concurrency is how many alert keys one notifier delivers at once
	// (default 4), so one hanging alert does not hold back another's page.
	Concurrency int
	// ReachInterval is how often a notifier with pages waiting on a backoff
	// is asked whether its service answers again (default 5s).
	ReachInterval time.Duration
}

// PendingStats describes one notifier's share of the outbox.
type PendingStats struct {
	Pending int       `json:"pending"`
	Oldest  time.Time `json:"oldest,omitzero"` // Created of the oldest pending
	Dead    int       `json:"dead"`
}

// maxRetryAfter caps how long a service may ask us to wait.
const maxRetryAfter = time.Hour

// Dispatcher delivers the outbox: one worker per notifier.
type Dispatcher struct {
	db      *DB
	o       DispatcherOptions
	log     *slog.Logger
	workers map[string]*worker
	order   []*worker // configuration order
	m       *dispatchMetrics

	mu      sync.Mutex
	changed chan struct{}   // closed and replaced whenever a delivery ends (Drain waits on it)
	warned  map[uint64]bool // notifications logged as notifier_missing
}

type worker struct {
	name string
	n    Notifier
	wake chan struct{}

	mu       sync.Mutex
	inflight map[string]bool // alert keys being delivered
	// hold mirrors NextAttempt in memory, so a retry whose durable write
	// failed still waits instead of hammering the service.
	hold map[uint64]time.Time
	// uncommitted are notifications delivered whose removal did not commit
	// (ID -> thread): the commit is retried, the page is not sent again.
	uncommitted map[uint64]string
	// rush are waiting notifications to attempt now, whatever their
	// backoff: the service answers again, or Drain's last attempt.
	rush map[uint64]bool
	// honour are notifications the service asked to wait (Retry-After):
	// a reachability probe does not rush them.
	honour map[uint64]bool
	// down says the service failed since it last answered a probe; a probe
	// that succeeds while down rushes the waiting pages.
	down      bool
	reaching  bool      // a probe is in flight
	nextReach time.Time // earliest next probe
}

// NewDispatcher returns a dispatcher over db's outbox for notifiers (by
// Name; a duplicate name keeps the first).
func NewDispatcher(db *DB, notifiers []Notifier, o DispatcherOptions) *Dispatcher {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Minute
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = 10 * time.Second
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 3 * time.Second
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.ReachInterval <= 0 {
		o.ReachInterval = 5 * time.Second
	}
	d := &Dispatcher{
		db:      db,
		o:       o,
		log:     o.Logger,
		workers: map[string]*worker{},
		changed: make(chan struct{}),
		warned:  map[uint64]bool{},
	}
	for _, n := range notifiers {
		if n == nil {
			continue
		}
		if _, dup := d.workers[n.Name()]; dup {
			d.log.Warn("notifier_duplicate", "notifier", n.Name())
			continue
		}
		w := &worker{
			name:        n.Name(),
			n:           n,
			wake:        make(chan struct{}, 1),
			inflight:    map[string]bool{},
			hold:        map[uint64]time.Time{},
			uncommitted: map[uint64]string{},
			rush:        map[uint64]bool{},
			honour:      map[uint64]bool{},
			// Pages already retrying when we start failed before: the
			// first probe that succeeds retries them.
			down: true,
		}
		d.workers[w.name] = w
		d.order = append(d.order, w)
	}
	d.m = newDispatchMetrics(o.Registerer, d)
	return d
}

func (d *Dispatcher) now() time.Time { return d.o.Now() }

// Kick tells the workers that notifications were enqueued. It never blocks.
func (d *Dispatcher) Kick() {
	for _, w := range d.order {
		w.poke()
	}
}

func (w *worker) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (d *Dispatcher) changedChan() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.changed
}

func (d *Dispatcher) broadcast() {
	d.mu.Lock()
	close(d.changed)
	d.changed = make(chan struct{})
	d.mu.Unlock()
}

// Run delivers until ctx is done, then waits for the attempts in flight
// (cancelled with ctx) to end. Workers wake on Kick, when the earliest
// backoff ends, and every PollInterval.
func (d *Dispatcher) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, w := range d.order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.work(ctx, w)
		}()
	}
	d.checkMissing()
	t := time.NewTicker(d.o.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-t.C:
			d.checkMissing()
		}
	}
}

func (d *Dispatcher) work(ctx context.Context, w *worker) {
	var deliveries sync.WaitGroup
	defer deliveries.Wait()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		r, err := d.pass(ctx, w, &deliveries)
		wait := d.o.PollInterval
		if err != nil {
			d.log.Error("outbox_read_failed", "notifier", w.name, "error", err.Error())
		} else if !r.next.IsZero() {
			wait = min(wait, max(r.next.Sub(d.now()), time.Millisecond))
		}
		if next, ok := d.maybeReach(ctx, w, r.rushable, &deliveries); ok {
			wait = min(wait, max(next.Sub(d.now()), time.Millisecond))
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// passResult is what one look at a notifier's outbox found.
type passResult struct {
	next     time.Time     // earliest time a waiting head is due; zero if none waits
	pending  int           // notifications of this notifier in the outbox
	inflight int           // alert keys being delivered
	waiting  []waitingHead // heads waiting on a backoff
	rushable []uint64      // of those, the ones a reachable service may rush (no Retry-After)
}

type waitingHead struct {
	id  uint64
	due time.Time
}

// pass starts a delivery for every head of line (lowest ID per alert key)
// of w that is due and not already in flight.
func (d *Dispatcher) pass(ctx context.Context, w *worker, wg *sync.WaitGroup) (passResult, error) {
	var r passResult
	var heads []*Notification
	err := d.db.View(func(tx *Tx) error {
		seen := map[string]bool{}
		return tx.eachPending(func(n *Notification) error {
			if n.Notifier != w.name {
				return nil
			}
			r.pending++
			if !seen[n.AlertKey] {
				seen[n.AlertKey] = true
				heads = append(heads, n)
			}
			return nil
		})
	})
	if err != nil {
		return r, err
	}
	now := d.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, h := range heads {
		if w.inflight[h.AlertKey] {
			continue
		}
		due := h.NextAttempt
		if h.Attempts == 0 {
			// The first attempt is immediate: Created (and so NextAttempt)
			// comes from the enqueuer's clock, which may run ahead of ours.
			due = time.Time{}
		}
		if t, ok := w.hold[h.ID]; ok && t.After(due) {
			due = t
		}
		if w.rush[h.ID] {
			due = time.Time{}
		}
		if due.After(now) {
			if r.next.IsZero() || due.Before(r.next) {
				r.next = due
			}
			r.waiting = append(r.waiting, waitingHead{h.ID, due})
			if !w.honour[h.ID] && !strings.HasPrefix(h.LastError, "HTTP 429") {
				r.rushable = append(r.rushable, h.ID)
			}
			continue
		}
		if len(w.inflight) >= d.o.Concurrency {
			continue // a finishing delivery wakes the worker
		}
		w.inflight[h.AlertKey] = true
		wg.Add(1)
		go func(id uint64, key string) {
			defer wg.Done()
			d.deliver(ctx, w, id, key)
		}(h.ID, h.AlertKey)
	}
	r.inflight = len(w.inflight)
	return r, nil
}

// deliver makes one attempt at notification id, the head of alert key.
func (d *Dispatcher) deliver(ctx context.Context, w *worker, id uint64, key string) {
	defer func() {
		w.mu.Lock()
		delete(w.inflight, key)
		w.mu.Unlock()
		w.poke()
		d.broadcast()
	}()

	// Read it again now that the key is ours: the copy pass saw may have
	// been delivered or rescheduled since.
	var n *Notification
	var thread string
	err := d.db.View(func(tx *Tx) error {
		var err error
		if n, err = tx.notification(id); err != nil || n == nil {
			return err
		}
		thread, err = tx.Thread(w.name, n.AlertKey)
		return err
	})
	if err != nil || n == nil {
		return
	}
	w.mu.Lock()
	newThread, delivered := w.uncommitted[id]
	hold := w.hold[id]
	rushed := w.rush[id]
	delete(w.rush, id) // one rushed attempt per rush
	w.mu.Unlock()
	if now := d.now(); !rushed && ((n.Attempts > 0 && n.NextAttempt.After(now)) || hold.After(now)) {
		return
	}
	if delivered {
		d.commitSent(w, n, newThread, 0, true)
		return
	}

	actx, cancel := context.WithTimeout(ctx, d.o.SendTimeout)
	start := time.Now()
	newThread, err = safeSend(actx, w.n, &n.Page, thread)
	took := time.Since(start)
	cancel()
	d.m.duration.WithLabelValues(w.name).Observe(took.Seconds())

	var de *DeliveryError
	switch {
	case err == nil:
		d.commitSent(w, n, newThread, took, false)
	case ctx.Err() != nil:
		// Cut short by our own shutdown, not failed by the service: no
		// attempt is counted; it is sent again by the next Run or Drain.
		d.log.Info("page_interrupted", "notifier", w.name, "kind", string(n.Page.Kind), "dedup_key", n.Page.DedupKey, "id", n.ID)
	case errors.As(err, &de) && de.Permanent:
		d.bury(w, n, de)
	default:
		d.retry(w, n, err, de, rushed)
	}
}

// maybeReach starts a reachability probe of w's service when pages wait on
// a backoff (rushable) and the last probe is ReachInterval old. It returns
// when the next probe is due, ok false when none is wanted.
func (d *Dispatcher) maybeReach(ctx context.Context, w *worker, rushable []uint64, wg *sync.WaitGroup) (time.Time, bool) {
	rc, ok := w.n.(Reacher)
	if !ok || len(rushable) == 0 {
		return time.Time{}, false
	}
	now := d.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.reaching {
		return time.Time{}, false // its end pokes the worker
	}
	if now.Before(w.nextReach) {
		return w.nextReach, true
	}
	w.reaching = true
	w.nextReach = now.Add(d.o.ReachInterval)
	ids := slices.Clone(rushable)
	wg.Add(1)
	go func() {
		defer wg.Done()
		pctx, cancel := context.WithTimeout(ctx, min(d.o.ReachInterval, d.o.SendTimeout))
		err := rc.Reach(pctx)
		cancel()
		w.mu.Lock()
		w.reaching = false
		rush := err == nil && w.down
		if err != nil {
			w.down = true
		} else if rush {
			w.down = false
			for _, id := range ids {
				w.rush[id] = true
			}
		}
		w.mu.Unlock()
		if rush {
			d.log.Info("notifier_reachable", "notifier", w.name, "retrying_now", len(ids),
				"note", "the service answers again: waiting pages retried without waiting for their backoff")
		}
		w.poke()
	}()
	return w.nextReach, true
}

// safeSend turns a notifier's panic into a retryable error: one bad page
// must not take the daemon down.
func safeSend(ctx context.Context, n Notifier, p *Page, thread string) (t string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("notifier panicked: %v", r)
		}
	}()
	return n.Send(ctx, p, thread)
}

// commitSent records a delivery: the notification leaves the outbox and
// the thread is kept, in one transaction. retried says this is a retry of
// a commit that failed after an earlier successful Send (already counted
// and logged as sent).
func (d *Dispatcher) commitSent(w *worker, n *Notification, thread string, took time.Duration, retried bool) {
	if n.Page.Kind == Resolve {
		thread = "" // the incident is over: forget its thread
	}
	err := d.db.Update(func(tx *Tx) error {
		cur, err := tx.notification(n.ID)
		if err != nil || cur == nil {
			return err
		}
		if err := tx.removeNotification(n.ID); err != nil {
			return err
		}
		if err := tx.setLastDelivery(w.name, d.now()); err != nil {
			return err
		}
		return tx.setThread(w.name, n.AlertKey, thread)
	})
	w.mu.Lock()
	delete(w.rush, n.ID)
	delete(w.honour, n.ID)
	w.down = false // it answered
	if err != nil {
		// Do not send it again while this process lives; retry the commit.
		w.uncommitted[n.ID] = thread
		w.hold[n.ID] = d.now().Add(d.o.MinBackoff)
	} else {
		delete(w.uncommitted, n.ID)
		delete(w.hold, n.ID)
	}
	w.mu.Unlock()
	if err != nil {
		d.log.Error("outbox_commit_failed", "notifier", w.name, "kind", string(n.Page.Kind), "dedup_key", n.Page.DedupKey, "id", n.ID,
			"error", err.Error(), "note", "delivered; sent again if the prober restarts before this commit succeeds")
	}
	if retried {
		return
	}
	d.m.sent(w.name, n.Page.Kind, "sent")
	d.log.Info("page_sent", "notifier", w.name, "kind", string(n.Page.Kind), "dedup_key", n.Page.DedupKey, "id", n.ID,
		"attempts", n.Attempts+1, "duration_ms", took.Milliseconds(), "latency_ms", d.now().Sub(n.Created).Milliseconds())
}

func (d *Dispatcher) bury(w *worker, n *Notification, de *DeliveryError) {
	n.Attempts++
	n.LastError = clip(de.Error(), 2000)
	n.Failed = d.now()
	w.mu.Lock()
	delete(w.rush, n.ID)
	delete(w.honour, n.ID)
	w.mu.Unlock()
	err := d.db.Update(func(tx *Tx) error {
		cur, err := tx.notification(n.ID)
		if err != nil || cur == nil {
			return err
		}
		if err := tx.bury(n); err != nil {
			return err
		}
		if n.Page.Kind == Resolve {
			return tx.setThread(w.name, n.AlertKey, "")
		}
		return nil
	})
	if err != nil {
		// Still in the outbox: hold it back like a retry so the next
		// attempt (which will fail the same way) is not immediate.
		w.mu.Lock()
		w.hold[n.ID] = d.now().Add(d.o.MaxBackoff)
		w.mu.Unlock()
		d.log.Error("outbox_write_failed", "notifier", w.name, "id", n.ID, "error", err.Error())
	} else {
		w.mu.Lock()
		delete(w.hold, n.ID)
		w.mu.Unlock()
	}
	d.m.sent(w.name, n.Page.Kind, "failed")
	d.log.Error("page_failed", "notifier", w.name, "kind", string(n.Page.Kind), "dedup_key", n.Page.DedupKey, "id", n.ID,
		"attempts", n.Attempts, "status", de.Status, "error", n.LastError)
}

// retry schedules the next attempt after a retryable failure. rushed says
// the attempt was rushed (a probe said the service answers): its failure
// does not mark the service down again, so a service that answers probes
// but fails pages earns at most one rushed attempt per backoff step.
func (d *Dispatcher) retry(w *worker, n *Notification, err error, de *DeliveryError, rushed bool) {
	n.Attempts++
	n.LastError = clip(err.Error(), 2000)
	wait := d.backoff(n.Attempts, de)
	n.NextAttempt = d.now().Add(wait)
	w.mu.Lock()
	w.hold[n.ID] = n.NextAttempt
	if de != nil && de.RetryAfter > 0 {
		w.honour[n.ID] = true
	} else {
		delete(w.honour, n.ID)
	}
	if !rushed {
		w.down = true
	}
	w.mu.Unlock()
	werr := d.db.Update(func(tx *Tx) error {
		cur, err := tx.notification(n.ID)
		if err != nil || cur == nil {
			return err
		}
		return tx.putNotification(n)
	})
	if werr != nil {
		d.log.Error("outbox_write_failed", "notifier", w.name, "id", n.ID, "error", werr.Error())
	}
	d.m.sent(w.name, n.Page.Kind, "retry")
	attrs := []any{"notifier", w.name, "kind", string(n.Page.Kind), "dedup_key", n.Page.DedupKey, "id", n.ID,
		"attempt", n.Attempts, "next_attempt", n.NextAttempt.UTC().Format(time.RFC3339Nano), "wait_ms", wait.Milliseconds(), "error", n.LastError}
	if de != nil && de.Status != 0 {
		attrs = append(attrs, "status", de.Status)
	}
	d.log.Warn("page_retry", attrs...)
}

// backoff is the wait before attempt attempts+1: the service's Retry-After
// if it gave one (up to an hour), else MinBackoff doubling per attempt up
// to MaxBackoff, with "equal jitter" (a uniform draw from the upper half) so
// that many pages failing together do not retry in lockstep.
func (d *Dispatcher) backoff(attempts int, de *DeliveryError) time.Duration {
	if de != nil && de.RetryAfter > 0 {
		return min(de.RetryAfter, maxRetryAfter)
	}
	b := d.o.MinBackoff
	for i := 1; i < attempts && b < d.o.MaxBackoff; i++ {
		b *= 2
	}
	b = min(b, d.o.MaxBackoff)
	half := b / 2
	return half + rand.N(b-half+1)
}

// checkMissing logs, once per notification, those addressed to a notifier
// that is not configured. They stay in the outbox: removing them on a
// config typo would lose pages, and they are delivered if the notifier
// comes back.
func (d *Dispatcher) checkMissing() {
	var missing []*Notification
	err := d.db.View(func(tx *Tx) error {
		return tx.eachPending(func(n *Notification) error {
			if d.workers[n.Notifier] == nil {
				missing = append(missing, n)
			}
			return nil
		})
	})
	if err != nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, n := range missing {
		if d.warned[n.ID] {
			continue
		}
		d.warned[n.ID] = true
		d.log.Warn("notifier_missing", "notifier", n.Notifier, "kind", string(n.Page.Kind), "dedup_key", n.Page.DedupKey, "id", n.ID,
			"note", "kept in the outbox; delivered if a notifier of this name is configured again")
	}
}

// Drain delivers everything pending, retrying as usual, until the outbox
// holds nothing for the configured notifiers or ctx ends (the SIGTERM
// flush). It returns early, without waiting, when the remaining work is
// backing off past ctx's deadline. What is left is returned as an error.
// Drain may run alongside Run: an alert key is never attempted twice at
// once.
func (d *Dispatcher) Drain(ctx context.Context) error {
	var wg sync.WaitGroup
	deadline, hasDeadline := ctx.Deadline()
	lastTried := map[uint64]bool{} // given their last attempt
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if ctx.Err() != nil {
			wg.Wait()
			return d.leftover()
		}
		changed := d.changedChan()
		var pending, inflight int
		var next time.Time
		waiting := map[*worker][]waitingHead{}
		for _, w := range d.order {
			r, err := d.pass(ctx, w, &wg)
			if err != nil {
				wg.Wait()
				return fmt.Errorf("outbox: %w", err)
			}
			pending += r.pending
			inflight += r.inflight
			if !r.next.IsZero() && (next.IsZero() || r.next.Before(next)) {
				next = r.next
			}
			waiting[w] = r.waiting
		}
		if hasDeadline {
			// Pages whose next retry falls after the deadline get one last
			// attempt now, once, rather than none (the service may well
			// answer by now).
			rushed := 0
			for w, hs := range waiting {
				w.mu.Lock()
				for _, h := range hs {
					if h.due.After(deadline) && !lastTried[h.id] {
						lastTried[h.id] = true
						w.rush[h.id] = true
						rushed++
					}
				}
				w.mu.Unlock()
			}
			if rushed > 0 {
				d.log.Info("drain_last_attempt", "pages", rushed, "note", "their next retry falls after the shutdown grace")
				continue
			}
		}
		if pending == 0 {
			wg.Wait()
			return d.leftover()
		}
		wait := time.Hour
		if inflight == 0 {
			if next.IsZero() {
				next = d.now() // only work beyond the concurrency limit: look again
			}
			if hasDeadline && next.After(deadline) {
				wg.Wait()
				return d.leftover()
			}
			wait = max(next.Sub(d.now()), time.Millisecond)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			wg.Wait()
			return d.leftover()
		case <-changed:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// leftover describes what the outbox still holds, nil if nothing.
func (d *Dispatcher) leftover() error {
	var left []*Notification
	err := d.db.View(func(tx *Tx) error {
		var err error
		left, err = tx.Pending()
		return err
	})
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	if len(left) == 0 {
		return nil
	}
	type agg struct {
		n       int
		oldest  time.Time
		lastErr string
	}
	by := map[string]*agg{}
	var names []string
	for _, n := range left {
		a := by[n.Notifier]
		if a == nil {
			a = &agg{oldest: n.Created}
			by[n.Notifier] = a
			names = append(names, n.Notifier)
		}
		a.n++
		if n.Created.Before(a.oldest) {
			a.oldest = n.Created
		}
		if n.LastError != "" {
			a.lastErr = n.LastError
		}
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, name := range names {
		a := by[name]
		s := fmt.Sprintf("%s: %d (oldest %s ago", name, a.n, d.now().Sub(a.oldest).Round(time.Second))
		if d.workers[name] == nil {
			s += ", notifier not configured"
		} else if a.lastErr != "" {
			s += ", last error: " + clip(a.lastErr, 200)
		}
		parts = append(parts, s+")")
	}
	return fmt.Errorf("outbox: %d notification(s) undelivered: %s", len(left), strings.Join(parts, "; "))
}

// Stats describes the outbox per notifier: the configured ones, and any
// other that still has pending or dead notifications.
func (d *Dispatcher) Stats() map[string]PendingStats {
	out := map[string]PendingStats{}
	for _, w := range d.order {
		out[w.name] = PendingStats{}
	}
	_ = d.db.View(func(tx *Tx) error {
		if err := tx.eachPending(func(n *Notification) error {
			s := out[n.Notifier]
			s.Pending++
			if s.Oldest.IsZero() || n.Created.Before(s.Oldest) {
				s.Oldest = n.Created
			}
			out[n.Notifier] = s
			return nil
		}); err != nil {
			return err
		}
		return tx.eachDead(func(n *Notification) error {
			s := out[n.Notifier]
			s.Dead++
			out[n.Notifier] = s
			return nil
		})
	})
	return out
}

// Clip shortens s to at most n bytes for an error or log line.
func Clip(s string, n int) string { return clip(s, n) }

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return truncateBytes(s, n)
}

// TruncateBytes cuts s to at most n bytes on a rune boundary, ending in
// "…" when it cut (a service's field limit).
func TruncateBytes(s string, n int) string { return truncateBytes(s, n) }

func truncateBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ell = "…"
	if n < len(ell) {
		return ""
	}
	cut := n - len(ell)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ell
}

// TruncateRunes cuts s to at most n runes (Slack counts characters).
func TruncateRunes(s string, n int) string { return truncateRunes(s, n) }

// truncateRunes cuts s to at most n runes (Slack counts characters),
// ending in "…" when it cut.
func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	i := 0
	for pos := range s {
		if i == n-1 {
			return s[:pos] + "…"
		}
		i++
	}
	return s
}

// dispatchMetrics are the dispatcher's Prometheus series. Label values
// are notifier names (from config), kinds and results: bounded.
type dispatchMetrics struct {
	total    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// notificationResults are prober_notifications_total's result label values.
var notificationResults = [...]string{"sent", "retry", "failed"}

func (m *dispatchMetrics) sent(notifier string, kind Kind, res string) {
	m.total.WithLabelValues(notifier, string(kind), res).Inc()
}

// outboxCollector reports pending counts and ages at scrape time, from the
// outbox itself, so they are never stale. src is swapped when a new
// dispatcher (after a config reload) registers on the same registry.
type outboxCollector struct {
	src     atomic.Pointer[Dispatcher]
	pending *prometheus.Desc
	oldest  *prometheus.Desc
	dead    *prometheus.Desc
}

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.oldest
	ch <- c.dead
}

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	d := c.src.Load()
	if d == nil {
		return
	}
	now := d.now()
	stats := d.Stats()
	dead := map[string]int{}
	if und, err := d.Undelivered(); err == nil {
		for _, u := range und {
			if u.Open {
				dead[u.Notifier]++
			}
		}
	}
	names := make([]string, 0, len(stats))
	for name := range stats {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		s := stats[name]
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(s.Pending), name)
		age := 0.0
		if !s.Oldest.IsZero() {
			age = max(now.Sub(s.Oldest).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age, name)
		ch <- prometheus.MustNewConstMetric(c.dead, prometheus.GaugeValue, float64(dead[name]), name)
	}
}

func newDispatchMetrics(reg prometheus.Registerer, d *Dispatcher) *dispatchMetrics {
	m := &dispatchMetrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prober_notifications_total",
			Help: "Notification delivery attempts by notifier, kind (trigger, reminder, resolve) and result (sent, retry, failed).",
		}, []string{"notifier", "kind", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "prober_notification_duration_seconds",
			Help:    "Time of one delivery attempt, including the notifier's rate-limit wait.",
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{"notifier"}),
	}
	c := &outboxCollector{
		pending: prometheus.NewDesc("prober_outbox_pending", "Notifications waiting in the outbox, by notifier.", []string{"notifier"}, nil),
		oldest:  prometheus.NewDesc("prober_outbox_oldest_pending_seconds", "Age of the oldest notification waiting in the outbox (0 when empty), by notifier.", []string{"notifier"}, nil),
		dead: prometheus.NewDesc("prober_notifications_dead_letters",
			"Notifications that failed for good (dead letters) since the notifier's last successful delivery, by notifier: pages nobody received.", []string{"notifier"}, nil),
	}
	c.src.Store(d)
	if reg == nil {
		return m
	}
	m.total = register(reg, m.total, d.log)
	m.duration = register(reg, m.duration, d.log)
	// Every notifier's series exist from the start, at 0: a fresh prober's
	// dashboard shows "0 failed", not "No data", and the first failure is
	// an increase Prometheus can see.
	for _, w := range d.order {
		for _, k := range []Kind{Trigger, Reminder, Resolve} {
			for _, res := range notificationResults {
				m.total.WithLabelValues(w.name, string(k), res)
			}
		}
	}
	if existing := register(reg, c, d.log); existing != c {
		existing.src.Store(d)
	}
	return m
}

// register registers c, or returns the collector already registered in its
// place (a dispatcher rebuilt on config reload shares the series).
func register[T prometheus.Collector](reg prometheus.Registerer, c T, log *slog.Logger) T {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if ex, ok := are.ExistingCollector.(T); ok {
				return ex
			}
		}
		log.Error("metrics_register_failed", "error", err.Error())
	}
	return c
}

// Notifier plumbing shared by the notifiers, here and in their own packages.

// NotifierOptions are what notifiers share.
type NotifierOptions struct {
	// HTTPClient is copied (its Transport wrapped to keep error bodies);
	// nil: a client with the notifier's timeout (default 10s).
	HTTPClient *http.Client
	// StatusURL is the prober's status page (PagerDuty client_url).
	StatusURL string
	Logger    *slog.Logger
	// Console is where notifiers that write locally (console) write,
	// already redacted; nil: nowhere.
	Console io.Writer
	// Rate (events per second) and Burst override the service's documented
	// limit the notifier paces itself to (tests; shared keys).
	Rate  float64
	Burst int
}

func (o NotifierOptions) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

// client copies the configured client, with a timeout and a Transport that
// keeps the body of failed responses (the libraries drop or garble it).
func (o NotifierOptions) client(timeout time.Duration) *http.Client {
	var c http.Client
	if o.HTTPClient != nil {
		c = *o.HTTPClient
	}
	if c.Timeout == 0 {
		c.Timeout = timeout
		if c.Timeout <= 0 {
			c.Timeout = 10 * time.Second
		}
	}
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c.Transport = &captureTransport{base: base}
	return &c
}

// Log is the notifiers' logger (never nil).
func (o NotifierOptions) Log() *slog.Logger { return o.logger() }

// Client is the HTTP client a notifier sends with: the configured one with
// timeout, keeping the bodies of failed responses for CaptureResponse.
func (o NotifierOptions) Client(timeout time.Duration) *http.Client { return o.client(timeout) }

// Limiter paces a notifier to r events a second with burst (Rate and
// Burst override them).
func (o NotifierOptions) Limiter(r float64, burst int) *Limiter {
	if o.Rate > 0 {
		r = o.Rate
	}
	if o.Burst > 0 {
		burst = o.Burst
	}
	return &Limiter{r: rate.NewLimiter(rate.Limit(r), max(burst, 1))}
}

// Limiter paces requests to a service's documented rate (a token bucket,
// golang.org/x/time/rate), so bursts (a backlog after an outage) do not
// earn 429s.
type Limiter struct{ r *rate.Limiter }

// Wait takes a token, waiting for one as long as ctx allows. A wait that
// would outlast ctx's deadline fails at once, as context.DeadlineExceeded
// (the delivery is retried later), taking no token; a wait cancelled
// midway gives its token back.
func (l *Limiter) Wait(ctx context.Context) error {
	if err := l.r.Wait(ctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: %v", context.DeadlineExceeded, err)
	}
	return nil
}

// HTTPDeliveryError classifies a service's HTTP answer the way the
// dispatcher retries, as the notifiers under alert/notify do: nil for a 2xx; a 429
// waits its Retry-After; a 408 or 5xx is retried; any other 4xx is
// permanent (resending the same request cannot fix it). msg is the
// service's error text, already redacted.
func HTTPDeliveryError(status int, h http.Header, msg string, now time.Time) *DeliveryError {
	de := &DeliveryError{Status: status, Msg: msg}
	switch {
	case status >= 200 && status <= 299:
		return nil
	case status == http.StatusTooManyRequests:
		de.RetryAfter = retryAfter(h, now)
	case status == http.StatusRequestTimeout || status >= 500:
	case status >= 400:
		de.Permanent = true
	}
	return de
}

// TransportError is a failure to get an answer at all, retried, described
// without the request URL (which may hold a secret).
func TransportError(what string, err error) *DeliveryError {
	return &DeliveryError{Msg: what + ": " + transportText(err)}
}

// Captured is the last response of one call made under CaptureResponse,
// as the server sent it.
type Captured struct {
	Status int
	Header http.Header
	Body   []byte // only for non-2xx answers, up to 64 KiB
}

type captureKey struct{}

// CaptureResponse returns a context under which a client from
// NotifierOptions.Client records the response into the returned
// *Captured: the service's error text that HTTP libraries drop or garble.
func CaptureResponse(ctx context.Context) (context.Context, *Captured) {
	c := &Captured{}
	return context.WithValue(ctx, captureKey{}, c), c
}

// captureTransport records status, headers and error bodies for requests
// made under withCapture, and hands the library an unread copy of the body.
type captureTransport struct {
	base http.RoundTripper
}

func (t *captureTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil || resp == nil {
		return resp, err
	}
	c, _ := req.Context().Value(captureKey{}).(*Captured)
	if c == nil {
		return resp, nil
	}
	c.Status = resp.StatusCode
	c.Header = resp.Header.Clone()
	c.Body = nil
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		c.Body = b
		resp.Body = io.NopCloser(bytes.NewReader(b))
	}
	return resp, nil
}

// RetryAfter parses a Retry-After header: seconds or an HTTP date.
func RetryAfter(h http.Header, now time.Time) time.Duration { return retryAfter(h, now) }

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		return max(time.Duration(s)*time.Second, 0)
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

// TransportText describes a failure to get an answer at all, without the
// request URL (which may hold a secret).
func TransportText(err error) string { return transportText(err) }

// transportText describes a failure to get an answer at all, without the
// request URL (which, for a Slack webhook, is the secret).
func transportText(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return "timed out: " + ue.Err.Error()
		}
		return ue.Err.Error()
	}
	return err.Error()
}
