package store

import (
	"bytes"
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
// file, whose pages, once touched, count in the process's RSS: reads
// (pages, a restart's restore) and pruning touch much of it, so the whole
// file (up to MaxBytes) would stay resident. After each Flush and Prune
// the map's pages are given back (releaseMapped), and only what one batch
// touches is resident between. Runs are added to a queue in memory and
// written in batches (Flush, one transaction and one fsync each), so that
// a run never waits for the disk; a full queue drops runs (counted) rather
// than block.
//
// Layout: time first, so that a flush writes the file's newest pages and
// a few per thousand flows, not some for every flow (the first layout, a
// bucket per flow, rewrote 3 pages a flow each flush: 12,500 pages, 51 MB,
// for 4,000 flows' two runs each):
//
//   - "log": every run, key: start (unix ns, big-endian) and the flow's
//     name; value: a uvarint, the key's start of the flow's run before it
//     (0: none), then archiveRunVersion, the labels and the run. A flow's
//     runs are read newest first along that chain.
//   - "heads": per flow (key: its name), uvarints: the start of its newest
//     run in "log" and the total size of its runs there.
//   - "5m" and "1h": key: bucket start (unix seconds, big-endian) and the
//     flow's name; value: uvarints runs, failed, sum and max of durations
//     in µs.
//
// A file of the first layout (bucket "flows") is converted when opened
// (migrate).

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
// are skipped when read. Version 2 is the compact encoding (encCompact):
// this prober reads both, a prober before it skips version 2's runs.
const (
	archiveRunVersion = 2
	archiveRunV1      = 1
)

// maxPending bounds the runs waiting for a flush.
const maxPending = 100_000

// maxCheckedArchive bounds the files whose every page bbolt's check reads
// at open: a bigger one opens without it, keeping a start bounded in time.
const maxCheckedArchive = 512 << 20

var (
	bucketLog    = []byte("log")
	bucketHeads  = []byte("heads")
	bucketFine   = []byte("5m")
	bucketCoarse = []byte("1h")
	// The first layout's: bucket "flows", in it one per flow holding
	// "runs", "5m", "1h" (and "bytes", recounted when converted).
	bucketFlows = []byte("flows")
	bucketRuns  = []byte("runs")
)

// roots are the layout's buckets in a transaction.
type roots struct{ log, heads, fine, coarse *bolt.Bucket }

func rootsOf(tx *bolt.Tx) roots {
	return roots{tx.Bucket(bucketLog), tx.Bucket(bucketHeads), tx.Bucket(bucketFine), tx.Bucket(bucketCoarse)}
}

// flowKey appends a time key (big-endian) and flow's name to b.
func flowKey(b []byte, t int64, flow string) []byte {
	return append(binary.BigEndian.AppendUint64(b, uint64(t)), flow...)
}

// head is a flow's entry in "heads".
type head struct{ newest, bytes uint64 }

func decodeHead(v []byte) head {
	newest, n := binary.Uvarint(v)
	if n <= 0 {
		return head{}
	}
	bytes, m := binary.Uvarint(v[n:])
	if m <= 0 {
		return head{}
	}
	return head{newest, bytes}
}

func (h head) append(b []byte) []byte {
	return binary.AppendUvarint(binary.AppendUvarint(b, h.newest), h.bytes)
}

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
			for _, name := range [...][]byte{bucketLog, bucketHeads, bucketFine, bucketCoarse} {
				if _, err := tx.CreateBucketIfNotExists(name); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if why == nil {
		why = migrate(db)
	}
	if why != nil {
		db.Close()
		return nil, fmt.Errorf("run history %s: %w: %v", path, ErrBadArchive, why)
	}
	a = &Archive{path: path, db: db, lim: lim}
	// The check read every page, a conversion wrote most: none of them is
	// needed now.
	a.releaseMapped()
	return a, nil
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
	b := appendArchived(a.scratch[:0], r)
	a.scratch = b
	if cap(b) > 64<<10 { // a huge run once (a kept body): do not keep its buffer
		a.scratch = nil
	}
	a.pending = append(a.pending, archived{flow: r.Flow, start: r.Start.UnixNano(),
		end: r.Start.Add(r.Duration).Unix(), dur: max(r.Duration.Microseconds(), 0),
		final: r.Final(), ok: r.OK(), enc: slices.Clone(b)})
}

// appendArchived appends r as "log" stores it after the chain's link:
// archiveRunVersion, the labels, the run without its screenshots' bytes
// (they stay in memory, bounded).
func appendArchived(b []byte, r *result.Run) []byte {
	b = append(b, archiveRunVersion)
	b = binary.AppendUvarint(b, uint64(len(r.Labels)))
	for k, v := range r.Labels {
		b = appendString(appendString(b, k), v)
	}
	return appendRun(b, withoutPNG(r))
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

// Flush writes the queued runs in one transaction, a flow at a time (its
// head read and written once), in the order of start within a flow (the
// chain's). The runs go at the end of "log", whose pages are filled
// (FillPercent), not split in halves. Values come from one buffer (bbolt
// copies keys; values must outlive the transaction, not a Put).
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
		r := rootsOf(tx)
		var w flushWriter
		for i := 0; i < len(order); {
			j := i + 1
			for j < len(order) && order[j].flow == order[i].flow {
				j++
			}
			if err := w.flow(r, order[i:j], a.lim.RunAge >= 0); err != nil {
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
	key []byte
}

// alloc returns n bytes of w.buf.
func (w *flushWriter) alloc(n int) []byte {
	if cap(w.buf)-len(w.buf) < n {
		w.buf = make([]byte, 0, max(64<<10, n)) // the old one stays with the values in it
	}
	off := len(w.buf)
	w.buf = w.buf[:off+n]
	return w.buf[off : off+n : off+n]
}

// keep returns a copy of b in w.buf.
func (w *flushWriter) keep(b []byte) []byte {
	out := w.alloc(len(b))
	copy(out, b)
	return out
}

// flow writes xs, one flow's runs sorted by start: the runs (if runs)
// and its head, and the 5m and 1h buckets of the final ones.
func (w *flushWriter) flow(r roots, xs []archived, runs bool) error {
	flow := xs[0].flow
	if runs {
		h := decodeHead(r.heads.Get([]byte(flow)))
		r.log.FillPercent = 1 // appends, mostly: full pages
		var link [binary.MaxVarintLen64]byte
		for _, x := range xs {
			// A key newer than the flow's newest keeps the chain in order
			// (two runs in one nanosecond, a clock set back).
			key := max(x.start, int64(h.newest)+1, 1)
			l := binary.AppendUvarint(link[:0], h.newest)
			v := w.alloc(len(l) + len(x.enc))
			copy(v[copy(v, l):], x.enc)
			w.key = flowKey(w.key[:0], key, flow)
			if err := r.log.Put(w.key, v); err != nil {
				return err
			}
			h.newest = uint64(key)
			h.bytes += uint64(len(v))
		}
		var v [2 * binary.MaxVarintLen64]byte
		if err := r.heads.Put([]byte(flow), w.keep(h.append(v[:0]))); err != nil {
			return err
		}
	}
	for _, width := range [...]int64{int64(FineBucket / time.Second), int64(CoarseBucket / time.Second)} {
		bb := r.fine
		if width == int64(CoarseBucket/time.Second) {
			bb = r.coarse
		}
		// Runs sorted by start are nearly sorted by end: the runs of one
		// bucket are summed while they come in a row.
		var g agg
		start := int64(0)
		put := func() error {
			if g.runs == 0 {
				return nil
			}
			w.key = flowKey(w.key[:0], start, flow)
			if old, ok := decodeAgg(bb.Get(w.key)); ok {
				g.merge(old)
			}
			var v [4 * binary.MaxVarintLen64]byte
			return bb.Put(w.key, w.keep(g.append(v[:0])))
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

// migrateChunk is how many flows of the first layout one transaction
// converts: a crash in between leaves the rest to the next open.
const migrateChunk = 200

// migrate converts a file of the first layout (a bucket per flow), a
// chunk of flows at a time, each deleted from the old layout in the
// transaction that writes it in the new.
func migrate(db *bolt.DB) error {
	for done := false; !done; {
		err := db.Update(func(tx *bolt.Tx) error {
			old := tx.Bucket(bucketFlows)
			if old == nil {
				done = true
				return nil
			}
			var names [][]byte
			_ = old.ForEachBucket(func(k []byte) error {
				if len(names) < migrateChunk {
					names = append(names, slices.Clone(k))
				}
				return nil
			})
			if len(names) == 0 {
				done = true
				return tx.DeleteBucket(bucketFlows)
			}
			r := rootsOf(tx)
			var w flushWriter
			for _, name := range names {
				if err := w.migrateFlow(r, old.Bucket(name), string(name)); err != nil {
					return err
				}
				if err := old.DeleteBucket(name); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("converting to the current layout: %w", err)
		}
	}
	return nil
}

// migrateFlow writes a flow's bucket of the first layout in the current.
func (w *flushWriter) migrateFlow(r roots, fb *bolt.Bucket, flow string) error {
	if rb := fb.Bucket(bucketRuns); rb != nil {
		var h head
		c := rb.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(k) != 8 {
				continue
			}
			key := max(int64(binary.BigEndian.Uint64(k)), int64(h.newest)+1, 1)
			var link [binary.MaxVarintLen64]byte
			l := binary.AppendUvarint(link[:0], h.newest)
			val := w.alloc(len(l) + len(v))
			copy(val[copy(val, l):], v)
			w.key = flowKey(w.key[:0], key, flow)
			if err := r.log.Put(w.key, val); err != nil {
				return err
			}
			h.newest, h.bytes = uint64(key), h.bytes+uint64(len(val))
		}
		if h.newest != 0 {
			var v [2 * binary.MaxVarintLen64]byte
			if err := r.heads.Put([]byte(flow), w.keep(h.append(v[:0]))); err != nil {
				return err
			}
		}
	}
	for _, t := range [...]struct {
		name []byte
		to   *bolt.Bucket
	}{{bucketFine, r.fine}, {bucketCoarse, r.coarse}} {
		bb := fb.Bucket(t.name)
		if bb == nil {
			continue
		}
		c := bb.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(k) != 8 {
				continue
			}
			w.key = flowKey(w.key[:0], int64(binary.BigEndian.Uint64(k)), flow)
			if err := t.to.Put(w.key, w.keep(v)); err != nil {
				return err
			}
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
		r := rootsOf(tx)
		// Runs past their age: the oldest of "log".
		var drop [][]byte
		freed := map[string]uint64{}
		c := r.log.Cursor()
		for k, v := c.First(); len(k) >= 8 && int64(binary.BigEndian.Uint64(k)) < runCut; k, v = c.Next() {
			drop = append(drop, slices.Clone(k))
			freed[string(k[8:])] += uint64(len(v))
		}
		// Each flow's runs beyond its share of MaxBytes: along its chain,
		// the newest that fit are kept, the rest dropped.
		type update struct {
			flow []byte
			h    head
			gone bool
		}
		var heads []update
		hc := r.heads.Cursor()
		// One cursor and one key for every look-up of the chains: a Get or
		// a Delete makes a cursor each (and a kept key each to drop later:
		// 10,000 flows' chains were tens of MB a prune). The runs beyond a
		// flow's share go at once, through the cursor (not the one
		// iterating "heads").
		lc := r.log.Cursor()
		var lk []byte
		for k, v := hc.First(); k != nil; k, v = hc.Next() {
			h := decodeHead(v)
			was := h
			h.bytes -= min(h.bytes, freed[string(k)])
			if int64(h.newest) < runCut {
				heads = append(heads, update{flow: slices.Clone(k), gone: true})
				continue
			}
			if int64(h.bytes) > share {
				var kept uint64
				over := false
				for key := h.newest; key != 0 && int64(key) >= runCut; {
					lk = append(binary.BigEndian.AppendUint64(lk[:0], key), k...)
					ck, v := lc.Seek(lk)
					if v == nil || !bytes.Equal(ck, lk) {
						break
					}
					next, _ := binary.Uvarint(v)
					if over = over || int64(kept)+int64(len(v)) > share; over {
						if err := lc.Delete(); err != nil {
							return err
						}
					} else {
						kept += uint64(len(v))
					}
					key = next
				}
				h.bytes = kept
			}
			if h != was {
				heads = append(heads, update{flow: slices.Clone(k), h: h})
			}
		}
		for _, k := range drop {
			if err := r.log.Delete(k); err != nil {
				return err
			}
		}
		for _, u := range heads {
			var err error
			if u.gone {
				err = r.heads.Delete(u.flow)
			} else {
				err = r.heads.Put(u.flow, u.h.append(nil))
			}
			if err != nil {
				return err
			}
		}
		if err := pruneBuckets(r.fine, fineCut); err != nil {
			return err
		}
		return pruneBuckets(r.coarse, coarseCut)
	})
	if err != nil {
		return fmt.Errorf("pruning run history %s: %w", a.path, err)
	}
	a.releaseMapped()
	return nil
}

// pruneBuckets deletes b's keys (unix seconds, then a flow) before cut.
func pruneBuckets(b *bolt.Bucket, cut int64) error {
	var drop [][]byte
	c := b.Cursor()
	for k, _ := c.First(); len(k) >= 8 && int64(binary.BigEndian.Uint64(k)) < cut; k, _ = c.Next() {
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
		// A flow's buckets are spread over the file's time order: one
		// look-up each (a day of 5-minute ones is 289).
		bb := tx.Bucket(name)
		var key []byte
		for s := lo; s <= hi; s += ws {
			key = flowKey(key[:0], s, flow)
			if g, ok := decodeAgg(bb.Get(key)); ok {
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
		// The written runs are older than the queued ones: along the
		// flow's chain from its newest.
		r := rootsOf(tx)
		var key []byte
		for k := decodeHead(r.heads.Get([]byte(flow))).newest; k != 0 && len(out) < n; {
			key = flowKey(key[:0], int64(k), flow)
			v := r.log.Get(key)
			if v == nil {
				break // pruned from here on
			}
			prev, m := binary.Uvarint(v)
			if m <= 0 {
				break
			}
			if int64(k) < before {
				if r, ok := decodeArchived(v[m:], flow); ok {
					out = append(out, r)
				}
			}
			if prev >= k {
				break // not a chain: damaged
			}
			k = prev
		}
		return nil
	})
	return out
}

// decodeArchived reads a stored run; the bytes are copied (bbolt's are
// only valid in their transaction).
func decodeArchived(v []byte, flow string) (*result.Run, bool) {
	if len(v) == 0 || (v[0] != archiveRunVersion && v[0] != archiveRunV1) {
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
