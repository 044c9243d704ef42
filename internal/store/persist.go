package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// History snapshots: the rules' counts (per flow, per dependency and per
// dependency and region) and when each flow's history began, so that a
// restart or a deploy does not leave every burn-rate window young (a young
// window is not judged, so without them a restart would blind the slow
// pairs for up to three days). Only evidence is kept: the regions' streaks
// and the duration samples start afresh (a region's state comes from its
// next run), and a snapshot that cannot be read is a fresh history, never
// an alert.
//
// Layout: magic "PRBHIS", a version byte, the CRC-32C of the body and its
// length (big-endian uint32s), then the body in varints: the time saved,
// the flows (name, history start, counter) and the dependencies (name,
// flows calling it, counter, and per region: name, counter). A counter is
// a presence byte, then its newest second and every cell of its tiers.

const (
	historyMagic   = "PRBHIS"
	historyVersion = 1
	historyHeader  = len(historyMagic) + 1 + 4 + 4
	// maxHistoryFile bounds what LoadHistory reads: 10,000 flows make
	// about 5 MB.
	maxHistoryFile = 256 << 20
	// maxName bounds a flow, dependency or region name in a snapshot.
	maxName = 1 << 12
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrBadHistory marks a snapshot that is not one this version can read
// (corrupt, truncated, empty, or of another version).
var ErrBadHistory = errors.New("unreadable history snapshot")

// AppendHistory appends a snapshot of the rules' history at at to b (as
// SaveHistory writes it).
func (s *Store) AppendHistory(b []byte, at time.Time) []byte {
	start := len(b)
	b = append(b, historyMagic...)
	b = append(b, historyVersion, 0, 0, 0, 0, 0, 0, 0, 0)
	w := &appendWriter{b: b}
	sum, n, _ := s.writeHistory(w, at) // appending does not fail
	b = w.b
	putHistoryHeader(b[start:], sum, n)
	return b
}

// putHistoryHeader fills a snapshot's header in hdr (historyHeader bytes):
// magic, version, the body's CRC-32C and length.
func putHistoryHeader(hdr []byte, sum uint32, n uint32) {
	copy(hdr, historyMagic)
	hdr[len(historyMagic)] = historyVersion
	binary.BigEndian.PutUint32(hdr[len(historyMagic)+1:], sum)
	binary.BigEndian.PutUint32(hdr[len(historyMagic)+5:], n)
}

type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// historyChunk is about how much of a snapshot is encoded under one read
// lock and written at once: the save allocates one buffer of it, not the
// snapshot (10,000 flows: 5 MB, and as much again copied from the
// counters), which once a minute raised the collector's goal.
const historyChunk = 32 << 10

// snapWriter writes a snapshot's body a chunk at a time, checksumming
// and counting it as it goes.
type snapWriter struct {
	w   io.Writer
	buf []byte
	sum uint32
	n   int
	err error
}

func (w *snapWriter) flush() {
	if len(w.buf) == 0 || w.err != nil {
		return
	}
	w.sum = crc32.Update(w.sum, castagnoli, w.buf)
	w.n += len(w.buf)
	_, w.err = w.w.Write(w.buf)
	w.buf = w.buf[:0]
}

// writeHistory writes a snapshot's body at at to w, and returns its
// CRC-32C and length. The flows are encoded a chunk at a time under the
// read lock (so neither runs nor readers wait for the disk or for 10,000
// flows), in name order, the dependencies one at a time. So the counts
// are each flow's and each dependency's at a slightly different moment, a
// few milliseconds apart: a run observed meanwhile may be in its flow's
// counts and not its dependency's, or the other way round. That is what a
// snapshot taken a moment earlier or later would differ by, and a restart
// loses the runs after it anyway. A flow or dependency removed meanwhile
// is written with empty counts (which RestoreHistory skips), so that the
// counts written before it hold; one added meanwhile waits for the next
// snapshot.
func (s *Store) writeHistory(out io.Writer, at time.Time) (uint32, uint32, error) {
	w := &snapWriter{w: out, buf: make([]byte, 0, 2*historyChunk)}
	names := s.sortedNames()
	// Which flows the snapshot holds, fixed before any is written: their
	// number comes first.
	counted := make([]uint64, (len(names)+63)/64)
	nf := 0
	s.mu.RLock()
	for i, name := range names {
		if fd := s.flows[name]; fd != nil && fd.hist.counts.counted() {
			counted[i/64] |= 1 << (i % 64)
			nf++
		}
	}
	deps := make([]string, 0, len(s.deps))
	for name := range s.deps {
		deps = append(deps, name)
	}
	s.mu.RUnlock()
	slices.Sort(deps)
	w.buf = binary.AppendVarint(w.buf, at.UnixNano())
	w.buf = binary.AppendUvarint(w.buf, uint64(nf))
	for i := 0; i < len(names) && w.err == nil; {
		s.mu.RLock()
		for ; i < len(names) && len(w.buf) < historyChunk; i++ {
			if counted[i/64]&(1<<(i%64)) == 0 {
				continue
			}
			w.buf = appendString(w.buf, names[i])
			fd := s.flows[names[i]]
			if fd == nil { // gone since counted
				w.buf = append(w.buf, 0, 0) // history start 0, no counts
				continue
			}
			w.buf = binary.AppendVarint(w.buf, fd.hist.first)
			w.buf = fd.hist.counts.appendTo(w.buf)
		}
		s.mu.RUnlock()
		w.flush()
	}
	w.buf = binary.AppendUvarint(w.buf, uint64(len(deps)))
	var callers, regs []string // reused: the largest dependency's
	var tail []byte
	for _, name := range deps {
		if w.err != nil {
			break
		}
		callers, regs, tail = callers[:0], regs[:0], tail[:0]
		s.mu.RLock()
		if d := s.deps[name]; d != nil {
			if n := len(names) + len(d.callers); cap(callers) < n && d.bit >= 0 {
				callers = make([]string, 0, n) // once, not grown by append
			}
			callers = s.callersLocked(d, names, callers)
			tail = d.counts.appendTo(tail)
			for reg := range d.byRegion {
				regs = append(regs, reg)
			}
			slices.Sort(regs)
			tail = binary.AppendUvarint(tail, uint64(len(regs)))
			for _, reg := range regs {
				tail = appendString(tail, reg)
				tail = d.byRegion[reg].appendTo(tail)
			}
		} else { // gone since listed
			tail = append(tail, 0, 0) // no counts, no regions
		}
		s.mu.RUnlock()
		w.buf = appendString(w.buf, name)
		w.buf = binary.AppendUvarint(w.buf, uint64(len(callers)))
		for _, f := range callers {
			w.buf = appendString(w.buf, f)
			if len(w.buf) >= historyChunk {
				w.flush()
			}
		}
		w.buf = append(w.buf, tail...)
		w.flush()
	}
	w.flush()
	if w.err != nil {
		return 0, 0, w.err
	}
	if w.n > math.MaxUint32 {
		return 0, 0, fmt.Errorf("a snapshot of %d bytes", w.n)
	}
	return w.sum, uint32(w.n), nil
}

// appendTo encodes k as good, total per bucket (the encoding from before
// the bad counts were kept apart: snapshots read either way).
func (k *counter[F, C]) appendTo(b []byte) []byte {
	if k.fine == nil {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.AppendVarint(b, k.latest)
	for s, v := range k.fine {
		bad := F(0)
		if k.bad != nil {
			bad = k.bad.fine[s]
		}
		b = binary.AppendUvarint(b, uint64(v-bad))
		b = binary.AppendUvarint(b, uint64(v))
	}
	for s, v := range k.coarse {
		bad := C(0)
		if k.bad != nil {
			bad = k.bad.coarse[s]
		}
		b = binary.AppendUvarint(b, uint64(v-bad))
		b = binary.AppendUvarint(b, uint64(v))
	}
	return b
}

// snapshot is a decoded history, merged into the store only when all of it
// was read.
type snapshot struct {
	saved time.Time
	flows []snapFlow
	deps  []snapDep
}

type snapFlow struct {
	name   string
	first  int64
	counts flowCounts
}

type snapDep struct {
	name     string
	flows    []string
	counts   counter[uint32, uint32]
	byRegion map[string]*counter[uint32, uint32]
}

// decoder reads a body; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, a ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrBadHistory}, a...)...)
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("truncated number")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("truncated number")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a number of items, each at least one byte long.
func (d *decoder) count(what string) int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("%d %s in %d bytes", n, what, len(d.b))
		return 0
	}
	return int(n)
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > maxName || n > uint64(len(d.b)) {
		d.fail("a name of %d bytes", n)
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func decodeCounter[F uint8 | uint32, C uint8 | uint16 | uint32](d *decoder, k *counter[F, C]) {
	if d.err != nil {
		return
	}
	if len(d.b) == 0 {
		d.fail("truncated counter")
		return
	}
	present := d.b[0]
	d.b = d.b[1:]
	switch present {
	case 0:
		return
	case 1:
	default:
		d.fail("counter marker %d", present)
		return
	}
	k.latest = d.varint()
	if k.latest < 0 || k.latest >= math.MaxUint32 {
		d.fail("counter time %d", k.latest)
		return
	}
	// The bad cells are made at the first bad count: most counters have
	// none (at 10,000 flows, 3.4 MB a load that would go at once).
	fine, coarse := make([]F, fineCells), make([]C, coarseCells)
	var bad *badCells[F, C]
	badCell := func() *badCells[F, C] {
		if bad == nil {
			bad = &badCells[F, C]{fine: make([]F, fineCells), coarse: make([]C, coarseCells)}
		}
		return bad
	}
	for i := range fine {
		good, total := d.uvarint(), d.uvarint()
		if uint64(F(total)) != total {
			d.fail("cell value %d", total)
		}
		if good > total {
			d.fail("more good than total")
		}
		fine[i] = F(total)
		if good < total {
			badCell().fine[i] = F(total - good)
		}
	}
	for i := range coarse {
		good, total := d.uvarint(), d.uvarint()
		if uint64(C(total)) != total {
			d.fail("cell value %d", total)
		}
		if good > total {
			d.fail("more good than total")
		}
		coarse[i] = C(total)
		if good < total {
			badCell().coarse[i] = C(total - good)
		}
	}
	k.fine, k.coarse, k.bad = fine, coarse, bad
}

// decodeFlowCounts reads a flow's counter: narrow if every coarse cell
// fits a byte (below 255, where counting would stop), else wide.
func decodeFlowCounts(d *decoder, c *flowCounts) {
	saved := *d
	var n counter[uint8, uint8]
	decodeCounter(d, &n)
	if d.err == nil && (n.fine == nil || !slices.Contains(n.coarse, 255)) {
		c.narrow = n
		return
	}
	*d = saved // a cell past a byte: read again, two bytes a cell
	var w counter[uint8, uint16]
	decodeCounter(d, &w)
	c.set(w)
}

// decodeHistory reads a snapshot.
func decodeHistory(b []byte) (*snapshot, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrBadHistory)
	}
	if len(b) < historyHeader || string(b[:len(historyMagic)]) != historyMagic {
		return nil, fmt.Errorf("%w: not a history snapshot", ErrBadHistory)
	}
	if v := b[len(historyMagic)]; v != historyVersion {
		return nil, fmt.Errorf("%w: version %d, this prober reads %d", ErrBadHistory, v, historyVersion)
	}
	hdr := b[len(historyMagic)+1:]
	sum, n := binary.BigEndian.Uint32(hdr), binary.BigEndian.Uint32(hdr[4:])
	body := b[historyHeader:]
	if uint64(len(body)) != uint64(n) {
		return nil, fmt.Errorf("%w: truncated (%d of %d bytes)", ErrBadHistory, len(body), n)
	}
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrBadHistory)
	}
	d := &decoder{b: body}
	sn := &snapshot{saved: time.Unix(0, d.varint())}
	nf := d.count("flows")
	sn.flows = make([]snapFlow, 0, nf)
	for i := 0; i < nf && d.err == nil; i++ {
		f := snapFlow{name: d.str(), first: d.varint()}
		decodeFlowCounts(d, &f.counts)
		sn.flows = append(sn.flows, f)
	}
	nd := d.count("dependencies")
	for i := 0; i < nd && d.err == nil; i++ {
		dep := snapDep{name: d.str()}
		nfl := d.count("flows")
		for j := 0; j < nfl && d.err == nil; j++ {
			dep.flows = append(dep.flows, d.str())
		}
		decodeCounter(d, &dep.counts)
		nr := d.count("regions")
		for j := 0; j < nr && d.err == nil; j++ {
			reg := d.str()
			c := &counter[uint32, uint32]{}
			decodeCounter(d, c)
			if dep.byRegion == nil {
				dep.byRegion = map[string]*counter[uint32, uint32]{}
			}
			dep.byRegion[reg] = c
		}
		sn.deps = append(sn.deps, dep)
	}
	if d.err == nil && len(d.b) > 0 {
		d.fail("%d bytes after the end", len(d.b))
	}
	if d.err != nil {
		return nil, d.err
	}
	return sn, nil
}

// dropBefore empties the buckets that end at or before cutoff (unix
// seconds), and says whether any event remains.
func (k *counter[F, C]) dropBefore(cutoff int64) bool {
	if k.fine == nil {
		return false
	}
	left := false
	for i, tr := range tiers {
		head := floorDiv(k.latest, tr.width)
		for idx := head - tr.n + 1; idx <= head; idx++ {
			s := k.slot(i, idx)
			if (idx+1)*tr.width <= cutoff {
				k.clear(i, s)
				continue
			}
			if i < fineTiers {
				left = left || k.fine[s] > 0
			} else {
				left = left || k.coarse[s] > 0
			}
		}
	}
	return left
}

// RestoreHistory reads a snapshot made by AppendHistory into the store,
// dropping what ended longer than keep before at (the longest window a
// rule reads). Flows and dependencies that already have history in the
// store (runs observed before the load) keep theirs. A snapshot that cannot
// be read is an error wrapping ErrBadHistory, and changes nothing.
func (s *Store) RestoreHistory(b []byte, at time.Time, keep time.Duration) error {
	sn, err := decodeHistory(b)
	if err != nil {
		return err
	}
	cutoff := at.Add(-keep).Unix()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range sn.flows {
		f := &sn.flows[i]
		if !f.counts.dropBefore(cutoff) {
			continue
		}
		fd := s.flows[f.name]
		if fd == nil {
			fd = &flowData{}
			s.flows[f.name] = fd
			s.names = nil
		}
		if fd.hist.counts.counted() {
			continue
		}
		fd.hist.counts = f.counts
		if f.first > 0 && (fd.hist.first == 0 || f.first < fd.hist.first) {
			fd.hist.first = f.first
		}
	}
	for i := range sn.deps {
		sd := &sn.deps[i]
		if !sd.counts.dropBefore(cutoff) {
			continue
		}
		d := s.deps[sd.name]
		if d == nil {
			d = s.newDep(sd.name)
		}
		if d.counts.fine != nil {
			continue
		}
		d.counts = sd.counts
		for _, f := range sd.flows {
			var h *flowHist
			if fd := s.flows[f]; fd != nil {
				h = &fd.hist
			}
			d.called(h, f)
		}
		for reg, c := range sd.byRegion {
			if c.dropBefore(cutoff) {
				if d.byRegion == nil {
					d.byRegion = map[string]*counter[uint32, uint32]{}
				}
				d.byRegion[reg] = c
			}
		}
	}
	return nil
}

// SaveHistory writes a snapshot at at to path atomically: a temporary file
// beside it, synced, then renamed over it (and the directory synced), so
// that a crash leaves the old snapshot or the new one, never half of one.
func (s *Store) SaveHistory(path string, at time.Time) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("saving history: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// The header (its checksum and length) is known at the end: written
	// last, over the zeros that keep its place.
	var hdr [historyHeader]byte
	if _, err := f.Write(hdr[:]); err != nil {
		return fmt.Errorf("saving history to %s: %w", tmp, err)
	}
	sum, n, err := s.writeHistory(f, at)
	if err != nil {
		return fmt.Errorf("saving history to %s: %w", tmp, err)
	}
	putHistoryHeader(hdr[:], sum, n)
	if _, err := f.WriteAt(hdr[:], 0); err != nil {
		return fmt.Errorf("saving history to %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("saving history: syncing %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("saving history: closing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("saving history: renaming to %s: %w", path, err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		d.Sync() // the rename itself durable; not all systems allow it
		d.Close()
	}
	return nil
}

// LoadHistory reads the snapshot at path (RestoreHistory). A missing file
// is an error wrapping fs.ErrNotExist (a first start); an unreadable one
// wraps ErrBadHistory.
func (s *Store) LoadHistory(path string, at time.Time, keep time.Duration) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("loading history: %w", err)
	}
	defer f.Close()
	// Read into a buffer of the file's size, not one grown by ReadAll
	// (twice the file, 10 MB at 10,000 flows, at every start).
	var size int64
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		size = min(st.Size(), maxHistoryFile) + bytes.MinRead // room for the read that says EOF
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	_, err = buf.ReadFrom(io.LimitReader(f, maxHistoryFile+1))
	b := buf.Bytes()
	if err != nil {
		return fmt.Errorf("loading history from %s: %w", path, err)
	}
	if len(b) > maxHistoryFile {
		return fmt.Errorf("loading history from %s: %w: larger than %d MiB", path, ErrBadHistory, maxHistoryFile>>20)
	}
	if err := s.RestoreHistory(b, at, keep); err != nil {
		return fmt.Errorf("loading history from %s: %w", path, err)
	}
	return nil
}
