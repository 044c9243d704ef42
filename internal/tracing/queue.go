package tracing

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// queue holds the spans of runs: they go into a bounded buffer that
// one goroutine drains into batched exports. add never waits: when the
// buffer is full (the exporter is down or slow) the span is dropped and
// counted, so an outage of the tracing backend never slows a run. The
// SDK's BatchSpanProcessor drops the same way but does not say how many.
//
// The buffer is a slice under a mutex, not a channel: a channel send
// wakes the parked exporter goroutine for every span, and those wake-ups
// (futex calls, a context switch on a busy machine) cost more CPU than
// making the span. The exporter is woken once a batch is full, or by its
// ticker.
type queue struct {
	upload   func(context.Context, [][]byte) error
	size     int
	batch    int
	interval time.Duration
	timeout  time.Duration
	log      *slog.Logger

	mu sync.Mutex
	// ring holds the pending spans, n of them from head: a ring, so that
	// taking a batch from the front copies the batch, not the rest.
	ring    [][]byte
	head, n int
	stopped bool
	kick    chan struct{} // 1: a batch is full

	dropped atomic.Uint64
	counter prometheus.Counter
	lastLog atomic.Int64 // unix nanos of the last drop log line

	flush    chan chan struct{}
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
	base     context.Context // cancelled when a shutdown runs out of time
	cancel   context.CancelFunc
}

// logEvery rate-limits the log line about dropped spans.
const logEvery = time.Minute

func newQueue(o Options, upload func(context.Context, [][]byte) error) *queue {
	q := &queue{upload: upload, size: o.Queue, batch: o.Batch, interval: o.Interval, timeout: o.ExportTimeout, log: o.Logger,
		kick: make(chan struct{}, 1), flush: make(chan chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	if q.size <= 0 {
		q.size = 4096
	}
	if q.batch <= 0 {
		q.batch = 512
	}
	if q.interval <= 0 {
		q.interval = 2 * time.Second
	}
	if q.timeout <= 0 {
		q.timeout = 10 * time.Second
	}
	if q.log == nil {
		q.log = slog.New(slog.DiscardHandler)
	}
	q.ring = make([][]byte, q.size)
	q.counter = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "prober_trace_spans_dropped_total",
		Help: "Spans of runs not exported: the export queue was full or the export failed.",
	})
	if o.Registerer != nil {
		o.Registerer.MustRegister(q.counter)
	}
	q.base, q.cancel = context.WithCancel(context.Background())
	go q.loop()
	return q
}

// add queues a run's spans, as many as there is room for.
func (q *queue) add(spans [][]byte) {
	q.mu.Lock()
	if q.stopped {
		q.mu.Unlock()
		q.drop(len(spans), "stopped", nil)
		return
	}
	room := min(len(spans), len(q.ring)-q.n)
	for _, s := range spans[:room] {
		q.ring[(q.head+q.n)%len(q.ring)] = s
		q.n++
	}
	full := q.n >= q.batch
	q.mu.Unlock()
	if room < len(spans) {
		q.drop(len(spans)-room, "queue full", nil)
	}
	if full {
		select {
		case q.kick <- struct{}{}:
		default: // already kicked
		}
	}
}

func (q *queue) drop(n int, why string, err error) {
	total := q.dropped.Add(uint64(n))
	q.counter.Add(float64(n))
	now := time.Now().UnixNano()
	last := q.lastLog.Load()
	if last != 0 && now-last < int64(logEvery) || !q.lastLog.CompareAndSwap(last, now) {
		return
	}
	args := []any{"reason", why, "dropped", n, "dropped_total", total}
	if err != nil {
		args = append(args, "error", err.Error())
	}
	q.log.Warn("trace_spans_dropped", args...)
}

// take moves at most a batch of the oldest pending spans into buf, only a
// whole batch unless partial: the spans it leaves stay counted in the
// queue's bound while the export runs.
func (q *queue) take(buf [][]byte, partial bool) [][]byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := min(q.n, q.batch)
	buf = buf[:0]
	if n == 0 || n < q.batch && !partial {
		return buf
	}
	for range n {
		buf = append(buf, q.ring[q.head])
		q.ring[q.head] = nil
		q.head = (q.head + 1) % len(q.ring)
	}
	q.n -= n
	return buf
}

func (q *queue) loop() {
	defer close(q.done)
	buf := make([][]byte, 0, q.batch)
	tick := time.NewTicker(q.interval)
	defer tick.Stop()
	// export sends batches while there are (whole ones unless partial).
	export := func(partial bool) {
		for {
			buf = q.take(buf, partial)
			if len(buf) == 0 {
				return
			}
			ctx, cancel := context.WithTimeout(q.base, q.timeout)
			err := q.upload(ctx, buf)
			cancel()
			if err != nil {
				q.drop(len(buf), "export failed", err)
			}
			clear(buf)
		}
	}
	for {
		select {
		case <-q.kick:
			export(false)
		case <-tick.C:
			export(true)
		case f := <-q.flush:
			export(true)
			close(f)
		case <-q.stop:
			q.mu.Lock()
			q.stopped = true
			q.mu.Unlock()
			export(true)
			return
		}
	}
}

// ForceFlush exports what is queued now, within ctx.
func (q *queue) ForceFlush(ctx context.Context) error {
	f := make(chan struct{})
	select {
	case q.flush <- f:
	case <-q.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-f:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shutdown exports what is queued, within ctx: past it the export in
// flight is abandoned (its spans counted as dropped).
func (q *queue) Shutdown(ctx context.Context) error {
	q.stopOnce.Do(func() { close(q.stop) })
	var err error
	select {
	case <-q.done:
	case <-ctx.Done():
		q.cancel()
		<-q.done // the export in flight returns on cancel
		err = ctx.Err()
	}
	q.cancel()
	return err
}
