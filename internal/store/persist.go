package store

import (
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

// AppendHistory appends a snapshot of the rules' history at at to b. The
// counts are copied under the store's read lock and encoded after it, so
// that runs are not held up while 10,000 flows encode.
func (s *Store) AppendHistory(b []byte, at time.Time) []byte {
	sn := s.copyHistory()
	start := len(b)
	b = append(b, historyMagic...)
	b = append(b, historyVersion, 0, 0, 0, 0, 0, 0, 0, 0)
	body := len(b)
	b = binary.AppendVarint(b, at.UnixNano())
	b = binary.AppendUvarint(b, uint64(len(sn.flows)))
	for i := range sn.flows {
		f := &sn.flows[i]
		b = appendString(b, f.name)
		b = binary.AppendVarint(b, f.first)
		b = f.counts.appendTo(b)
	}
	b = binary.AppendUvarint(b, uint64(len(sn.deps)))
	for i := range sn.deps {
		d := &sn.deps[i]
		b = appendString(b, d.name)
		b = binary.AppendUvarint(b, uint64(len(d.flows)))
		for _, f := range d.flows {
			b = appendString(b, f)
		}
		b = d.counts.appendTo(b)
		b = binary.AppendUvarint(b, uint64(len(d.byRegion)))
		for reg, c := range d.byRegion {
			b = appendString(b, reg)
			b = c.appendTo(b)
		}
	}
	hdr := b[start+len(historyMagic)+1:]
	binary.BigEndian.PutUint32(hdr, crc32.Checksum(b[body:], castagnoli))
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(b)-body))
	return b
}

// copyHistory copies what a snapshot holds (names are immutable strings,
// shared).
func (s *Store) copyHistory() *snapshot {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sn := &snapshot{flows: make([]snapFlow, 0, len(s.flows)), deps: make([]snapDep, 0, len(s.deps))}
	// The flows' cells in two allocations, not two a flow: the lock is
	// held while they are copied.
	var nFine, nCoarse int
	for _, fd := range s.flows {
		if fd.hist.on {
			nFine, nCoarse = nFine+len(fd.hist.counts.fine), nCoarse+len(fd.hist.counts.coarse)
		}
	}
	fine, coarse := make([]uint8, 0, nFine), make([]uint16, 0, nCoarse)
	for name, fd := range s.flows {
		if !fd.hist.on || fd.hist.counts.fine == nil {
			continue
		}
		k := &fd.hist.counts
		f, c := len(fine), len(coarse)
		fine, coarse = append(fine, k.fine...), append(coarse, k.coarse...)
		sn.flows = append(sn.flows, snapFlow{name: name, first: fd.hist.first,
			counts: counter[uint8, uint16]{latest: k.latest, fine: fine[f:len(fine):len(fine)], coarse: coarse[c:len(coarse):len(coarse)], bad: k.bad.clone()}})
	}
	for name, d := range s.deps {
		sd := snapDep{name: name, counts: d.counts.clone(), byRegion: make(map[string]*counter[uint32, uint32], len(d.byRegion))}
		for f := range d.flows {
			sd.flows = append(sd.flows, f)
		}
		for reg, c := range d.byRegion {
			cc := c.clone()
			sd.byRegion[reg] = &cc
		}
		sn.deps = append(sn.deps, sd)
	}
	return sn
}

func (k *counter[F, C]) clone() counter[F, C] {
	return counter[F, C]{latest: k.latest, fine: slices.Clone(k.fine), coarse: slices.Clone(k.coarse), bad: k.bad.clone()}
}

func (b *badCells[F, C]) clone() *badCells[F, C] {
	if b == nil {
		return nil
	}
	return &badCells[F, C]{fine: slices.Clone(b.fine), coarse: slices.Clone(b.coarse)}
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
	counts counter[uint8, uint16]
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

func decodeCounter[F uint8 | uint32, C uint16 | uint32](d *decoder, k *counter[F, C]) {
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
	fine, coarse := make([]F, fineCells), make([]C, coarseCells)
	bad := &badCells[F, C]{fine: make([]F, fineCells), coarse: make([]C, coarseCells)}
	anyBad := false
	for i := range fine {
		good, total := d.uvarint(), d.uvarint()
		if uint64(F(total)) != total {
			d.fail("cell value %d", total)
		}
		if good > total {
			d.fail("more good than total")
		}
		fine[i], bad.fine[i] = F(total), F(total-good)
		anyBad = anyBad || good != total
	}
	for i := range coarse {
		good, total := d.uvarint(), d.uvarint()
		if uint64(C(total)) != total {
			d.fail("cell value %d", total)
		}
		if good > total {
			d.fail("more good than total")
		}
		coarse[i], bad.coarse[i] = C(total), C(total-good)
		anyBad = anyBad || good != total
	}
	k.fine, k.coarse = fine, coarse
	if anyBad {
		k.bad = bad
	}
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
	for i := 0; i < nf && d.err == nil; i++ {
		f := snapFlow{name: d.str(), first: d.varint()}
		decodeCounter(d, &f.counts)
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
		fd.hist.on = true
		if fd.hist.counts.fine != nil {
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
			d = &depHist{flows: map[string]struct{}{}}
			s.deps[sd.name] = d
		}
		if d.counts.fine != nil {
			continue
		}
		d.counts = sd.counts
		for _, f := range sd.flows {
			d.flows[f] = struct{}{}
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
	b := s.AppendHistory(nil, at)
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
	if _, err := f.Write(b); err != nil {
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
	b, err := io.ReadAll(io.LimitReader(f, maxHistoryFile+1))
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
