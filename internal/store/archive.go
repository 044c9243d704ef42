package store

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/prober-dev/prober/internal/result"
)

// The archive is the run history on disk, in the state dir, so that a
// restart keeps it: every run (encoded as in memory, runcodec.go) for a
// bounded time and size, and per flow the final runs' counts and
// durations in 5-minute buckets for a day and hourly buckets for 30 days,
// which uptime and the latency graph read. Nothing of it is held in memory
// but the runs not yet written: the Store stays what the hot path and the
// rules read, at the cost it had.
//
// One bbolt file (as the alert state): ACID commits, a crash leaves the
// last committed batch, space freed by pruning is reused, and the file
// lock keeps a second prober out. bbolt reads through a map of the whole
// file, whose pages, once touched, count in the process's RSS: every
// flush touches most flows, so the whole file (up to MaxBytes) would be
// resident. After each Flush and Prune the map's pages are given back
// (releaseMapped), and only what one batch touches is resident between. Runs are added to a queue in memory and
// written in batches (Flush, one transaction and one fsync each), so that
// a run never waits for the disk; a full queue drops runs (counted) rather
// than block.
//
// Layout: bucket "flows" holds a bucket per flow with "runs" (key: start,
// unix ns, big-endian; value: archiveRunVersion, the labels, the run),
// "5m" and "1h" (key: bucket start, unix seconds, big-endian; value:
// uvarints runs, failed, sum and max of durations in µs), and "bytes" (the
// runs' total size, uvarint).

// Archive resolutions: a day of 5-minute buckets (the latency graph, the
// 24h uptime) and 30 days of hourly ones (7d and 30d uptime). One more
// bucket than the span, as a window of the whole span touches two partial
// ones.
const (
	FineBucket   = 5 * time.Minute
	FineSpan     = 24 * time.Hour
	CoarseBucket = time.Hour
	CoarseSpan   = 30 * 24 * time.Hour
)

// Defaults of ArchiveLimits.
const (
	DefaultArchiveRunAge   = 48 * time.Hour
	DefaultArchiveMaxBytes = 256 << 20
)

// archiveRunVersion is the first byte of a stored run: the run codec's
// layout. A change of runcodec.go must bump it; runs of another version
// are skipped when read.
const archiveRunVersion = 1

// maxPending bounds the runs waiting for a flush.
const maxPending = 100_000

// maxCheckedArchive bounds the files whose every page bbolt's check reads
// at open: a bigger one opens without it, keeping a start bounded in time.
const maxCheckedArchive = 512 << 20

var (
	bucketFlows  = []byte("flows")
	bucketRuns   = []byte("runs")
	bucketFine   = []byte("5m")
	bucketCoarse = []byte("1h")
	keyBytes     = []byte("bytes")
)

// ErrBadArchive marks an archive file this prober cannot use (corrupt,
// truncated, or not an archive).
var ErrBadArchive = errors.New("unreadable run history")

// ErrArchiveLocked is returned when another process holds the archive.
var ErrArchiveLocked = errors.New("run history locked by another process (is another prober running with the same state dir?)")

// ArchiveLimits bound the runs kept on disk; the buckets are bounded by
// their spans.
type ArchiveLimits struct {
	// RunAge is how long runs are kept (0: DefaultArchiveRunAge; negative:
	// none are kept, only the buckets).
	RunAge time.Duration
	// MaxBytes bounds the runs' total size (0: DefaultArchiveMaxBytes),
	// shared equally by the flows (SetFlows): each keeps its newest runs
	// within its share.
	MaxBytes int64
}

// Archive is the run history on disk. Safe for concurrent use.
type Archive struct {
	path string
	db   *bolt.DB
	lim  ArchiveLimits

	mu       sync.Mutex // guards the fields below; never held during disk I/O
	pending  []archived
	flushing []archived // taken by a Flush, not yet committed
	dropped  int64
	nflows   int
	scratch  []byte

	// commit is held for writing while a batch commits and leaves
	// flushing, and for reading while a read looks at the file and the
	// queue, so that a run is counted exactly once.
	commit  sync.RWMutex
	flushMu sync.Mutex // one Flush at a time
}

// archived is a run waiting to be written.
type archived struct {
	flow      string
	start     int64 // unix ns
	end       int64 // unix s: where the buckets count it
	dur       int64 // µs
	final, ok bool
	enc       []byte
}

// OpenArchive opens (or creates, with its directory) the archive at path.
// A file that is not a sound archive is an error wrapping ErrBadArchive;
// one held by another process, ErrArchiveLocked.
func OpenArchive(path string, lim ArchiveLimits) (a *Archive, err error) {
	if lim.RunAge == 0 {
		lim.RunAge = DefaultArchiveRunAge
	}
	if lim.MaxBytes <= 0 {
		lim.MaxBytes = DefaultArchiveMaxBytes
	}
	if err := os.MkdirAll(dirOf(path), 0o700); err != nil {
		return nil, fmt.Errorf("run history %s: %w", path, err)
	}
	size := int64(-1)
	if st, err := os.Stat(path); err == nil {
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("run history %s: not a regular file", path)
		}
		size = st.Size()
	}
	// A damaged page can make bbolt fault or panic rather than return an
	// error: both become ErrBadArchive.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	var db *bolt.DB
	defer func() {
		if r := recover(); r != nil {
			if db != nil {
				func() { defer func() { _ = recover() }(); _ = db.Close() }()
			}
			a, err = nil, fmt.Errorf("run history %s: %w: bbolt: %v", path, ErrBadArchive, r)
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second, FreelistType: bolt.FreelistMapType})
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("run history %s: %w", path, ErrArchiveLocked)
	case err != nil && ioError(err):
		return nil, fmt.Errorf("run history %s: %w", path, err)
	case err != nil: // invalid, checksum, version, too small: what the file holds
		return nil, fmt.Errorf("run history %s: %w: %v", path, ErrBadArchive, err)
	}
	var why error
	if size > 0 && size <= maxCheckedArchive {
		_ = db.View(func(tx *bolt.Tx) error {
			for e := range tx.Check() {
				if why == nil {
					why = e
				}
			}
			return nil
		})
	}
	if why == nil {
		why = db.Update(func(tx *bolt.Tx) error {
			_, err := tx.CreateBucketIfNotExists(bucketFlows)
			return err
		})
	}
	if why != nil {
		db.Close()
		return nil, fmt.Errorf("run history %s: %w: %v", path, ErrBadArchive, why)
	}
	return &Archive{path: path, db: db, lim: lim}, nil
}

// ioError says whether err is the system's (permissions, disk), not the
// file's content.
func ioError(err error) bool {
	var pe *fs.PathError
	var errno syscall.Errno
	return errors.As(err, &pe) || errors.As(err, &errno)
}

func dirOf(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if os.IsPathSeparator(path[i]) {
			return path[:max(i, 1)]
		}
	}
	return "."
}

// Path is the archive's file.
func (a *Archive) Path() string { return a.path }

// Close closes the file; runs not flushed are lost (Flush first).
func (a *Archive) Close() error {
	a.flushMu.Lock()
	defer a.flushMu.Unlock()
	return a.db.Close()
}

// SetFlows sets the number of configured flows, which share MaxBytes.
func (a *Archive) SetFlows(n int) {
	a.mu.Lock()
	a.nflows = n
	a.mu.Unlock()
}

// Dropped is how many runs were dropped because the queue was full.
func (a *Archive) Dropped() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.dropped
}

// Observe queues r for the next Flush. It never waits for the disk.
func (a *Archive) Observe(r *result.Run) {
	if r.Start.Unix() < 0 || r.Start.Unix() >= 1<<32 {
		return // no usable time (a hand-made run)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.pending) >= maxPending {
		a.dropped++
		return
	}
	b := append(a.scratch[:0], archiveRunVersion)
	b = binary.AppendUvarint(b, uint64(len(r.Labels)))
	for k, v := range r.Labels {
		b = appendString(appendString(b, k), v)
	}
	b = appendRun(b, withoutPNG(r)) // screenshots stay in memory, bounded
	a.scratch = b
	a.pending = append(a.pending, archived{flow: r.Flow, start: r.Start.UnixNano(),
		end: r.Start.Add(r.Duration).Unix(), dur: max(r.Duration.Microseconds(), 0),
		final: r.Final(), ok: r.OK(), enc: slices.Clone(b)})
}

// agg is one bucket's figures.
type agg struct {
	runs, failed, sum, max uint64 // sum, max: µs
}

func (g *agg) add(x archived) {
	g.runs++
	if !x.ok {
		g.failed++
	}
	g.sum += uint64(x.dur)
	g.max = max(g.max, uint64(x.dur))
}

func (g *agg) merge(o agg) {
	g.runs += o.runs
	g.failed += o.failed
	g.sum += o.sum
	g.max = max(g.max, o.max)
}

func (g agg) append(b []byte) []byte {
	for _, v := range [...]uint64{g.runs, g.failed, g.sum, g.max} {
		b = binary.AppendUvarint(b, v)
	}
	return b
}

func decodeAgg(b []byte) (agg, bool) {
	var v [4]uint64
	for i := range v {
		x, n := binary.Uvarint(b)
		if n <= 0 {
			return agg{}, false
		}
		v[i], b = x, b[n:]
	}
	return agg{v[0], v[1], v[2], v[3]}, len(b) == 0 && v[1] <= v[0]
}

func be64(v int64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(v)) }

// Flush writes the queued runs in one transaction. The batch is written a
// flow at a time, in the order of the flows' names (the order of the
// file's tree, so that each page on the way is visited once) and of start
// within a flow: one look-up of the flow's buckets, not one a run; a run
// newer than the flow's newest goes at the end of its bucket without a
// look-up for a duplicate key, and such appends fill pages (FillPercent),
// not half of them. Keys and the small values come from one buffer
// (bbolt copies keys; values must outlive the transaction, not a Put).
func (a *Archive) Flush() error {
	a.flushMu.Lock()
	defer a.flushMu.Unlock()
	a.mu.Lock()
	batch := a.pending
	a.pending, a.flushing = nil, batch
	a.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	// Sorted in a copy: readers see flushing in queue order.
	order := slices.Clone(batch)
	slices.SortStableFunc(order, func(x, y archived) int {
		if c := strings.Compare(x.flow, y.flow); c != 0 {
			return c
		}
		return cmp.Compare(x.start, y.start)
	})
	a.commit.Lock()
	defer a.commit.Unlock()
	err := a.update(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketFlows)
		var w flushWriter
		for i := 0; i < len(order); {
			j := i + 1
			for j < len(order) && order[j].flow == order[i].flow {
				j++
			}
			if err := w.flow(root, order[i:j], a.lim.RunAge >= 0); err != nil {
				return err
			}
			i = j
		}
		return nil
	})
	a.mu.Lock()
	a.flushing = nil
	if err != nil { // kept for the next try, within the queue's bound
		a.pending = append(batch[:min(len(batch), maxPending):min(len(batch), maxPending)], a.pending...)
		if n := len(a.pending) - maxPending; n > 0 {
			a.dropped += int64(n)
			a.pending = a.pending[:maxPending]
		}
	}
	a.mu.Unlock()
	if err != nil {
		return fmt.Errorf("writing run history to %s: %w", a.path, err)
	}
	a.releaseMapped()
	return nil
}

// flushWriter writes a batch's runs and buckets a flow at a time.
type flushWriter struct {
	buf []byte // values, which must live as long as the transaction
}

// keep returns a copy of b in w.buf.
func (w *flushWriter) keep(b []byte) []byte {
	off := len(w.buf)
	if cap(w.buf)-off < len(b) {
		w.buf = make([]byte, 0, max(4096, len(b))) // the old one stays with the values in it
		off = 0
	}
	w.buf = append(w.buf, b...)
	return w.buf[off:len(w.buf):len(w.buf)]
}

// flow writes xs, one flow's runs sorted by start: the runs (if runs),
// the byte count, and the 5m and 1h buckets of the final ones.
func (w *flushWriter) flow(root *bolt.Bucket, xs []archived, runs bool) error {
	var name [256]byte
	fb, err := root.CreateBucketIfNotExists(append(name[:0], xs[0].flow...))
	if err != nil {
		return err
	}
	if runs {
		rb, err := fb.CreateBucketIfNotExists(bucketRuns)
		if err != nil {
			return err
		}
		last := int64(-1) // the bucket's newest key, then the batch's
		if k, _ := rb.Cursor().Last(); len(k) == 8 {
			last = int64(binary.BigEndian.Uint64(k))
		}
		if xs[0].start > last {
			rb.FillPercent = 1 // appends only: full pages
		}
		var added uint64
		var k [8]byte
		for _, x := range xs {
			key := x.start
			if key <= last { // not past the end: a key may be taken (two runs in one nanosecond, a clock set back)
				for binary.BigEndian.PutUint64(k[:], uint64(key)); rb.Get(k[:]) != nil; binary.BigEndian.PutUint64(k[:], uint64(key)) {
					key++
				}
			}
			binary.BigEndian.PutUint64(k[:], uint64(key))
			if err := rb.Put(k[:], x.enc); err != nil {
				return err
			}
			last = max(last, key)
			added += uint64(len(x.enc))
		}
		have, _ := binary.Uvarint(fb.Get(keyBytes))
		var v [binary.MaxVarintLen64]byte
		if err := fb.Put(keyBytes, w.keep(binary.AppendUvarint(v[:0], have+added))); err != nil {
			return err
		}
	}
	for _, width := range [...]int64{int64(FineBucket / time.Second), int64(CoarseBucket / time.Second)} {
		name := bucketFine
		if width == int64(CoarseBucket/time.Second) {
			name = bucketCoarse
		}
		var bb *bolt.Bucket
		// Runs sorted by start are nearly sorted by end: the runs of one
		// bucket are summed while they come in a row.
		var g agg
		start := int64(0)
		put := func() error {
			if g.runs == 0 {
				return nil
			}
			if bb == nil {
				var err error
				if bb, err = fb.CreateBucketIfNotExists(name); err != nil {
					return err
				}
			}
			var k [8]byte
			binary.BigEndian.PutUint64(k[:], uint64(start))
			if old, ok := decodeAgg(bb.Get(k[:])); ok {
				g.merge(old)
			}
			var v [4 * binary.MaxVarintLen64]byte
			return bb.Put(k[:], w.keep(g.append(v[:0])))
		}
		for _, x := range xs {
			if !x.final {
				continue
			}
			if s := floorDiv(x.end, width) * width; s != start || g.runs == 0 {
				if err := put(); err != nil {
					return err
				}
				g, start = agg{}, s
			}
			g.add(x)
		}
		if err := put(); err != nil {
			return err
		}
	}
	return nil
}

// releaseMapped gives back the pages of the file's map that this process
// touched (reads, a commit's traversal): the file and the page cache keep
// them. Inside a read transaction, which keeps bbolt from remapping.
func (a *Archive) releaseMapped() {
	_ = a.view(func(tx *bolt.Tx) error {
		return dropMappedPages(a.db.Info().Data, tx.Size())
	})
}

// update is db.Update with bbolt's panics (a file damaged while open)
// turned into errors.
func (a *Archive) update(fn func(*bolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: bbolt: %v", ErrBadArchive, r)
		}
	}()
	return a.db.Update(fn)
}

// view is db.View likewise.
func (a *Archive) view(fn func(*bolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: bbolt: %v", ErrBadArchive, r)
		}
	}()
	return a.db.View(fn)
}

// Prune drops what the limits no longer keep at now: runs older than
// RunAge, each flow's oldest runs beyond its share of MaxBytes, buckets
// older than their span.
func (a *Archive) Prune(now time.Time) error {
	a.flushMu.Lock()
	defer a.flushMu.Unlock()
	a.mu.Lock()
	share := a.lim.MaxBytes / int64(max(a.nflows, 1))
	a.mu.Unlock()
	runCut := now.Add(-a.lim.RunAge).UnixNano()
	fineCut := now.Add(-FineSpan - FineBucket).Unix()
	coarseCut := now.Add(-CoarseSpan - CoarseBucket).Unix()
	err := a.update(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketFlows)
		var flows [][]byte
		_ = root.ForEachBucket(func(k []byte) error {
			flows = append(flows, slices.Clone(k))
			return nil
		})
		for _, name := range flows {
			fb := root.Bucket(name)
			if err := pruneBuckets(fb.Bucket(bucketFine), fineCut); err != nil {
				return err
			}
			if err := pruneBuckets(fb.Bucket(bucketCoarse), coarseCut); err != nil {
				return err
			}
			rb := fb.Bucket(bucketRuns)
			if rb == nil {
				continue
			}
			have, _ := binary.Uvarint(fb.Get(keyBytes))
			var drop [][]byte
			c := rb.Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				if int64(binary.BigEndian.Uint64(k)) >= runCut && int64(have) <= share {
					break
				}
				drop = append(drop, slices.Clone(k))
				have -= min(have, uint64(len(v)))
			}
			for _, k := range drop {
				if err := rb.Delete(k); err != nil {
					return err
				}
			}
			if len(drop) > 0 {
				if err := fb.Put(keyBytes, binary.AppendUvarint(nil, have)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pruning run history %s: %w", a.path, err)
	}
	a.releaseMapped()
	return nil
}

// pruneBuckets deletes b's keys (unix seconds) before cut.
func pruneBuckets(b *bolt.Bucket, cut int64) error {
	if b == nil {
		return nil
	}
	var drop [][]byte
	c := b.Cursor()
	for k, _ := c.First(); k != nil && int64(binary.BigEndian.Uint64(k)) < cut; k, _ = c.Next() {
		drop = append(drop, slices.Clone(k))
	}
	for _, k := range drop {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// Bucket is one bucket of a flow's final runs: how many, how many failed,
// and their mean and longest duration.
type Bucket struct {
	Start        time.Time
	Runs, Failed int
	Mean, Max    time.Duration
}

// Uptime counts flow's final runs that ended in the window of length w
// before at, and those that passed. The window is whole buckets: 5-minute
// ones for up to a day, hourly ones beyond (the bucket holding its start
// counts whole).
func (a *Archive) Uptime(flow string, w time.Duration, at time.Time) (good, total int) {
	count := func(_ int64, g agg) {
		good += int(g.runs - g.failed)
		total += int(g.runs)
	}
	if w > FineSpan {
		a.each(flow, CoarseBucket, at.Add(-w), at, count)
		return good, total
	}
	// The whole hours inside the window are read from the hourly buckets,
	// which sum the same runs as their twelve 5-minute ones: a day is
	// about 50 reads, not 289 (the status page reads one a flow).
	const fw, cw = int64(FineBucket / time.Second), int64(CoarseBucket / time.Second)
	lo, hi := floorDiv(at.Add(-w).Unix(), fw)*fw, floorDiv(at.Unix(), fw)*fw
	hLo, hHi := floorDiv(lo+cw-1, cw)*cw, floorDiv(hi+fw, cw)*cw-cw // the whole hours in [lo, hi+fw)
	if hLo > hHi {
		a.each(flow, FineBucket, time.Unix(lo, 0), time.Unix(hi, 0), count)
		return good, total
	}
	if lo < hLo {
		a.each(flow, FineBucket, time.Unix(lo, 0), time.Unix(hLo-fw, 0), count)
	}
	a.each(flow, CoarseBucket, time.Unix(hLo, 0), time.Unix(hHi, 0), count)
	if hHi+cw <= hi {
		a.each(flow, FineBucket, time.Unix(hHi+cw, 0), time.Unix(hi, 0), count)
	}
	return good, total
}

// Buckets returns flow's buckets of width (FineBucket or CoarseBucket)
// from the one holding from to the one holding to, oldest first; empty
// buckets are left out. Runs not yet flushed are counted.
func (a *Archive) Buckets(flow string, width time.Duration, from, to time.Time) []Bucket {
	got := map[int64]agg{}
	a.each(flow, width, from, to, func(s int64, g agg) {
		old := got[s]
		old.merge(g)
		got[s] = old
	})
	out := make([]Bucket, 0, len(got))
	for s, g := range got {
		if g.runs == 0 {
			continue
		}
		out = append(out, Bucket{Start: time.Unix(s, 0).UTC(), Runs: int(g.runs), Failed: int(g.failed),
			Mean: time.Duration(g.sum/g.runs) * time.Microsecond, Max: time.Duration(g.max) * time.Microsecond})
	}
	slices.SortFunc(out, func(x, y Bucket) int { return x.Start.Compare(y.Start) })
	return out
}

// each calls fn with the figures of flow's buckets of width from the one
// holding from to the one holding to: the file's, then each queued run's
// (so a bucket's start may come more than once).
func (a *Archive) each(flow string, width time.Duration, from, to time.Time, fn func(start int64, g agg)) {
	name, ws := bucketFine, int64(FineBucket/time.Second)
	if width == CoarseBucket {
		name, ws = bucketCoarse, int64(CoarseBucket/time.Second)
	}
	lo, hi := floorDiv(from.Unix(), ws)*ws, floorDiv(to.Unix(), ws)*ws
	a.commit.RLock()
	defer a.commit.RUnlock()
	_ = a.view(func(tx *bolt.Tx) error {
		fb := tx.Bucket(bucketFlows).Bucket([]byte(flow))
		if fb == nil {
			return nil
		}
		bb := fb.Bucket(name)
		if bb == nil {
			return nil
		}
		c := bb.Cursor()
		for k, v := c.Seek(be64(lo)); k != nil; k, v = c.Next() {
			s := int64(binary.BigEndian.Uint64(k))
			if s > hi {
				break
			}
			if g, ok := decodeAgg(v); ok {
				fn(s, g)
			}
		}
		return nil
	})
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, q := range [2][]archived{a.flushing, a.pending} {
		for _, x := range q {
			if x.flow != flow || !x.final {
				continue
			}
			if s := floorDiv(x.end, ws) * ws; s >= lo && s <= hi {
				var g agg
				g.add(x)
				fn(s, g)
			}
		}
	}
}

// Recent returns up to n of flow's newest kept runs, newest first (the
// queued ones too). A run that cannot be decoded is skipped.
func (a *Archive) Recent(flow string, n int) []*result.Run {
	return a.RunsBefore(flow, math.MaxInt64, n)
}

// RunsBefore returns up to n of flow's kept runs that started before
// before (unix ns), newest first (the queued ones too): what the Store
// reads for the runs older than those it holds (Store.SetOlder). A run
// that cannot be decoded is skipped.
func (a *Archive) RunsBefore(flow string, before int64, n int) []*result.Run {
	if n <= 0 || before <= 0 {
		return nil
	}
	var out []*result.Run
	a.commit.RLock()
	defer a.commit.RUnlock()
	a.mu.Lock()
	for _, q := range [2][]archived{a.pending, a.flushing} {
		for i := len(q) - 1; i >= 0 && len(out) < n; i-- {
			if q[i].flow == flow && q[i].start < before {
				if r, ok := decodeArchived(q[i].enc, flow); ok {
					out = append(out, r)
				}
			}
		}
	}
	a.mu.Unlock()
	if len(out) >= n {
		return out
	}
	_ = a.view(func(tx *bolt.Tx) error {
		fb := tx.Bucket(bucketFlows).Bucket([]byte(flow))
		if fb == nil || fb.Bucket(bucketRuns) == nil {
			return nil
		}
		c := fb.Bucket(bucketRuns).Cursor()
		k, v := c.Seek(be64(before))
		if k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for ; k != nil && len(out) < n; k, v = c.Prev() {
			if r, ok := decodeArchived(v, flow); ok {
				out = append(out, r)
			}
		}
		return nil
	})
	return out
}

// decodeArchived reads a stored run; the bytes are copied (bbolt's are
// only valid in their transaction).
func decodeArchived(v []byte, flow string) (*result.Run, bool) {
	if len(v) == 0 || v[0] != archiveRunVersion {
		return nil, false
	}
	d := runDecoder{s: string(v[1:])}
	n := d.uvarint()
	if d.bad || n > uint64(len(d.s)) {
		return nil, false
	}
	var labels map[string]string
	if n > 0 {
		labels = make(map[string]string, n)
	}
	for i := uint64(0); i < n; i++ {
		k := d.string()
		labels[k] = d.string()
	}
	if d.bad {
		return nil, false
	}
	return decodeRunChecked(d.s, flow, labels)
}
