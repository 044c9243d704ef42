package store

import (
	"math"
	"math/bits"
	"slices"
	"strings"
	"time"

	"github.com/prober-dev/prober/internal/result"
)

// History: what the rules need beyond the last few full runs, kept compact
// so that 10,000 flows cost a few tens of megabytes:
//
//   - per flow, good/total counts of final runs, and per dependency of the
//     calls made by final runs, in time buckets of four resolutions that
//     each cover the whole of their span (every run is counted in all four):
//     10s buckets for 10 minutes, 1m for an hour, 10m for 6 hours and 1h for
//     3 days. A window is summed from the finest tier that still holds its
//     start, so it is exact at that tier's resolution: 5m and 30m burn-rate
//     windows at 10s/1m, 2h and 6h at 10m, 1d and 3d at 1h (all of the
//     default burn windows are whole buckets). Four small tiers cost 232
//     buckets; two flat ones (1m for 6h, 10m for 3d) would cost 792.
//   - per flow (final runs) and per (flow, step) (every executed step,
//     retried runs too: each was a real request, as in the step duration
//     histogram) the durations of the last hour, at most 1,000 runs, for
//     quantiles; in one table per flow whose rows (runs) share a
//     timestamp.
//   - per flow and region, the latest final run's outcome, the start of the
//     current pass/fail streak and the trace ids of its failing runs.

// tier is one resolution of the count rings: n buckets of width seconds.
// n is one more than span/width so that a window of the whole span, which
// touches a partial bucket at each end, is still held.
type tier struct{ width, n int64 }

var tiers = [...]tier{{10, 61}, {60, 61}, {600, 37}, {3600, 73}}

// slots is the number of buckets over all tiers.
const slots = 61 + 61 + 37 + 73

// HistorySpan is how far back counts reach: longer windows are cut to it.
const HistorySpan = 72 * time.Hour

// Sample retention for quantiles, unless SetSampleRetention says otherwise.
const (
	DefaultSampleAge = time.Hour
	DefaultSamples   = 1000
)

// maxTraces bounds the trace ids kept per region's failing streak.
const maxTraces = 5

// counter counts total and bad events in the tiers' rings, the two fine
// tiers (10s, 1m) in cells of type F and the coarse ones in C: a flow's
// final runs (at most one a second) fit uint8 per 10s or 1m bucket and
// uint16 per 10m or 1h bucket (3,600 an hour), a third less than uint16
// throughout (and most flows' fit uint8 throughout: flowCounts); a dependency's calls, summed over every flow calling it, are
// uint32 throughout. The bad counts, in the same buckets, exist from the
// first bad event: most flows never fail within 3 days, and their counts
// are half the size (10,000 flows: 3.4 MB, not 6.8). Cells saturate, never
// wrap. The zero value is empty and allocates on the first add.
type counter[F uint8 | uint32, C uint8 | uint16 | uint32] struct {
	latest int64 // unix second of the newest event; the rings end there
	fine   []F   // tiers 0 and 1, per bucket: total
	coarse []C   // tiers 2 and 3
	bad    *badCells[F, C]
}

// badCells are a counter's bad events, per bucket as its totals.
type badCells[F uint8 | uint32, C uint8 | uint16 | uint32] struct {
	fine   []F
	coarse []C
}

// fineTiers is how many of tiers are counted in F cells.
const fineTiers = 2

// tierOff is where each tier's cells start in fine or coarse.
var tierOff = func() (off [len(tiers)]int64) {
	var o int64
	for i, tr := range tiers {
		if i == fineTiers {
			o = 0
		}
		off[i] = o
		o += tr.n
	}
	return off
}()

// The lengths of fine and coarse.
var (
	fineCells   = tierOff[fineTiers-1] + tiers[fineTiers-1].n
	coarseCells = tierOff[len(tiers)-1] + tiers[len(tiers)-1].n
)

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// bump counts one event in cell s, saturating: a total at its maximum
// counts neither (so bad never exceeds total). bad is nil only when good.
func bump[T uint8 | uint16 | uint32](total, bad []T, s int64, good bool) {
	if total[s] != ^T(0) {
		total[s]++
		if !good {
			bad[s]++
		}
	}
}

func (k *counter[F, C]) slot(i int, idx int64) int64 {
	return tierOff[i] + mod(idx, tiers[i].n)
}

func (k *counter[F, C]) cell(i int, idx int64) (good, total int) {
	s := k.slot(i, idx)
	var bad int
	if i < fineTiers {
		total = int(k.fine[s])
		if k.bad != nil {
			bad = int(k.bad.fine[s])
		}
	} else {
		total = int(k.coarse[s])
		if k.bad != nil {
			bad = int(k.bad.coarse[s])
		}
	}
	return total - bad, total
}

// clear empties cell s of tier i.
func (k *counter[F, C]) clear(i int, s int64) {
	if i < fineTiers {
		k.fine[s] = 0
		if k.bad != nil {
			k.bad.fine[s] = 0
		}
	} else {
		k.coarse[s] = 0
		if k.bad != nil {
			k.bad.coarse[s] = 0
		}
	}
}

func (k *counter[F, C]) add(sec int64, good bool) {
	if k.fine == nil {
		k.fine, k.coarse = make([]F, fineCells), make([]C, coarseCells)
		k.latest = sec
	} else if sec > k.latest {
		k.advance(sec)
	}
	if !good && k.bad == nil {
		k.bad = &badCells[F, C]{fine: make([]F, fineCells), coarse: make([]C, coarseCells)}
	}
	var badF []F
	var badC []C
	if k.bad != nil {
		badF, badC = k.bad.fine, k.bad.coarse
	}
	for i, tr := range tiers {
		idx := floorDiv(sec, tr.width)
		if idx > floorDiv(k.latest, tr.width)-tr.n { // a late event may be older than the ring
			if i < fineTiers {
				bump(k.fine, badF, k.slot(i, idx), good)
			} else {
				bump(k.coarse, badC, k.slot(i, idx), good)
			}
		}
	}
}

// advance moves the rings' end to sec, clearing the buckets it enters.
func (k *counter[F, C]) advance(sec int64) {
	for i, tr := range tiers {
		old, now := floorDiv(k.latest, tr.width), floorDiv(sec, tr.width)
		for idx := max(old+1, now-tr.n+1); idx <= now; idx++ {
			k.clear(i, k.slot(i, idx))
		}
	}
	k.latest = sec
}

// coarseFull says whether a coarse cell that an event at sec counts in
// holds its type's maximum: the next event there would not be counted.
func (k *counter[F, C]) coarseFull(sec int64) bool {
	for i := fineTiers; i < len(tiers); i++ {
		if k.coarse[k.slot(i, floorDiv(sec, tiers[i].width))] == ^C(0) {
			return true
		}
	}
	return false
}

// flowCounts counts a flow's final runs: the coarse cells (10m and 1h) a
// byte each while every one fits, two from the first that would not. A
// flow run once a minute counts 10 in a 10m bucket and 60 in an hour's, so
// almost every flow keeps 240 bytes of cells, not 352 (10,000 flows: 1.1
// MB); one run every few seconds widens within its first hour.
type flowCounts struct {
	narrow counter[uint8, uint8]
	wide   *counter[uint8, uint16] // once widened (narrow is then empty)
}

// counted says whether any event was counted.
func (c *flowCounts) counted() bool { return c.wide != nil || c.narrow.fine != nil }

func (c *flowCounts) add(sec int64, good bool) {
	if c.wide != nil {
		c.wide.add(sec, good)
		return
	}
	c.narrow.add(sec, good)
	if c.narrow.coarseFull(sec) {
		c.widen() // the next event in that cell is counted
	}
}

// widen moves the counts to cells of two bytes.
func (c *flowCounts) widen() {
	n := &c.narrow
	w := &counter[uint8, uint16]{latest: n.latest, fine: n.fine, coarse: widenCells(n.coarse)}
	if n.bad != nil {
		w.bad = &badCells[uint8, uint16]{fine: n.bad.fine, coarse: widenCells(n.bad.coarse)}
	}
	c.wide, c.narrow = w, counter[uint8, uint8]{}
}

func widenCells(cells []uint8) []uint16 {
	out := make([]uint16, len(cells))
	for i, v := range cells {
		out[i] = uint16(v)
	}
	return out
}

// set replaces the counts with k's (a snapshot's), narrow if they fit.
func (c *flowCounts) set(k counter[uint8, uint16]) {
	*c = flowCounts{}
	if k.fine == nil {
		return
	}
	fits := func(cells []uint16) bool {
		return !slices.ContainsFunc(cells, func(v uint16) bool { return v >= 255 })
	}
	if !fits(k.coarse) {
		c.wide = &k
		return
	}
	c.narrow = counter[uint8, uint8]{latest: k.latest, fine: k.fine, coarse: narrowCells(k.coarse)}
	if k.bad != nil {
		c.narrow.bad = &badCells[uint8, uint8]{fine: k.bad.fine, coarse: narrowCells(k.bad.coarse)}
	}
}

func narrowCells(cells []uint16) []uint8 {
	out := make([]uint8, len(cells))
	for i, v := range cells {
		out[i] = uint8(v)
	}
	return out
}

func (c *flowCounts) sum(at time.Time, w time.Duration) (good, total int) {
	if c.wide != nil {
		return c.wide.sum(at, w)
	}
	return c.narrow.sum(at, w)
}

func (c *flowCounts) dropBefore(cutoff int64) bool {
	if c.wide != nil {
		return c.wide.dropBefore(cutoff)
	}
	return c.narrow.dropBefore(cutoff)
}

func (c *flowCounts) appendTo(b []byte) []byte {
	if c.wide != nil {
		return c.wide.appendTo(b)
	}
	return c.narrow.appendTo(b)
}

// window is the bucket range of (at-w, at] in a tier, each end rounded to
// the nearest bucket edge (so the error is at most half a bucket each way):
// the bucket holding at-w counts if more than half of it is inside, the
// bucket holding at if at least half of it is, or if nothing came after at
// (at is now: the bucket holds all there is). A window shorter than half a
// bucket is the one bucket nearest to it.
func window(atN, wN, width, latest int64) (lo, hi int64) {
	wid := width * int64(time.Second)
	hi = floorDiv(atN, wid)
	if atN < hi*wid+wid/2 && floorDiv(atN, int64(time.Second)) < latest {
		hi--
	}
	start := atN - wN
	lo = floorDiv(start, wid)
	if lo*wid+wid/2 <= start {
		lo++
	}
	return min(lo, hi), hi // never less than one bucket
}

// sum counts the events in (at-w, at], rounded to the buckets of the finest
// tier that still holds the window's start (the coarsest tier clamps to
// what it holds: a window longer than 3 days is 3 days).
func (k *counter[F, C]) sum(at time.Time, w time.Duration) (good, total int) {
	if k.fine == nil || w <= 0 || at.Unix() < 0 || at.Unix() > math.MaxInt64/int64(time.Second)-1 {
		return 0, 0
	}
	atN := at.UnixNano()
	for i, tr := range tiers {
		lo, hi := window(atN, int64(w), tr.width, k.latest)
		head := floorDiv(k.latest, tr.width)
		if lo <= head-tr.n && i < len(tiers)-1 {
			continue
		}
		lo, hi = max(lo, head-tr.n+1), min(hi, head)
		for idx := lo; idx <= hi; idx++ {
			g, t := k.cell(i, idx)
			good += g
			total += t
		}
		return good, total
	}
	return 0, 0
}

// noDur marks a cell without a sample: a step that did not run, or the run
// column of a run that was retried (not final).
const noDur = math.MaxUint32

// durTable is a flow's recent durations: a growable ring of rows, one per
// run, each holding the run's end (unix seconds: uint32 lasts until 2106)
// and, per column, a duration in microseconds (saturating below 71
// minutes, longer than any timeout worth having). Column 0 is the run
// (final runs only), column i+1 the flow's i-th step (every run that
// executed it). A run's steps share its timestamp: 4+4×columns bytes a run
// where a series per step would cost 8 a sample.
type durTable struct {
	cols     int
	at       []uint32
	d        []uint32 // len(at) rows of cols
	start, n int
}

func micros(d time.Duration) uint32 {
	return uint32(min(max(d.Microseconds(), 0), noDur-1))
}

// row appends a row at at with cols columns (widening the table for a new
// step), all cells noDur, after evicting rows older than maxAge and beyond
// maxN, and returns it to fill.
func (t *durTable) row(at uint32, cols int, maxAge uint32, maxN int) []uint32 {
	// Rows arrive nearly in order: the oldest is at the front.
	for t.n > 0 {
		f := t.at[t.start]
		if (f < at && at-f > maxAge) || t.n >= maxN {
			t.start = (t.start + 1) % len(t.at)
			t.n--
			continue
		}
		break
	}
	size := len(t.at)
	if t.n == size && size < maxN {
		size = min(max(4, 2*size), maxN)
	}
	if size != len(t.at) || cols > t.cols {
		t.relayout(size, max(cols, t.cols))
	}
	if t.n == len(t.at) { // full at the bound: the oldest goes
		t.start = (t.start + 1) % len(t.at)
		t.n--
	}
	i := (t.start + t.n) % len(t.at)
	t.n++
	t.at[i] = at
	r := t.d[i*t.cols : (i+1)*t.cols]
	for j := range r {
		r[j] = noDur
	}
	return r
}

func (t *durTable) relayout(size, cols int) {
	at, d := make([]uint32, size), make([]uint32, size*cols)
	for i := 0; i < t.n; i++ {
		k := (t.start + i) % len(t.at)
		at[i] = t.at[k]
		r := d[i*cols : (i+1)*cols]
		copy(r, t.d[k*t.cols:(k+1)*t.cols])
		for j := t.cols; j < cols; j++ {
			r[j] = noDur
		}
	}
	t.at, t.d, t.cols, t.start = at, d, cols, 0
}

// slower counts the durations of column col in (at-w, at] above
// threshold, and all.
func (t *durTable) slower(col int, threshold time.Duration, at time.Time, w time.Duration) (slower, n int) {
	if t.n == 0 || w <= 0 || col >= t.cols {
		return 0, 0
	}
	hi, lo := at.Unix(), at.Add(-w).Unix()
	limit := threshold.Microseconds()
	for i := 0; i < t.n; i++ {
		k := (t.start + i) % len(t.at)
		if s := int64(t.at[k]); s > lo && s <= hi {
			if v := t.d[k*t.cols+col]; v != noDur {
				n++
				if int64(v) > limit {
					slower++
				}
			}
		}
	}
	return slower, n
}

// flowHist is one flow's history, inline in its flowData. What only some flows need is behind pointers: the
// duration samples (only flows a latency rule names), a failing region's
// evidence, a retry chain; the first region's state is inline (one prober
// is one region).
type flowHist struct {
	// first is the start (unix ns) of the first final run counted: the
	// history covers windows that begin after it (FlowHistorySince).
	first  int64
	counts flowCounts  // final runs
	dur    *durSamples // durations of runs and steps; nil when not sampled
	regs   regions     // one per region seen, sorted
	// deps has the bit (depHist.bit) of each dependency its final runs
	// called: a caller costs a bit, not an entry in a map of 10,000.
	deps uint64
}

// durSamples is a sampled flow's durations, and the steps its columns are:
// the step names only a latency rule reads (they are the runs' strings, the
// configuration's, not copies).
type durSamples struct {
	durTable
	steps []string // the table's step columns, in first-seen order
}

// depHist is one dependency's calls, over every flow calling it.
type depHist struct {
	counts counter[uint32, uint32]
	// bit (0-63) is set in the flowHist.deps of every flow calling it;
	// -1 past 64 dependencies. callers are those without the bit: all of
	// them for bit -1, else the ones a snapshot named that have no history
	// here.
	bit     int
	callers map[string]struct{}
	// byRegion counts the same calls per region: a dependency failing in
	// one region of three is a regional degradation, not an outage.
	byRegion map[string]*counter[uint32, uint32]
}

// failInfo is what failed in a final failed run.
type failInfo struct {
	step, dependency, class, expectation, actual, message string
}

// regions are a flow's regions' states, sorted by region: the first
// inline (one prober is one region), and all of them in many once there is
// a second.
type regions struct {
	one  [1]regionState // used once a region is seen
	many []regionState
}

// all returns the states, sorted; the slice is valid until the next get.
func (rg *regions) all() []regionState {
	switch {
	case rg.many != nil:
		return rg.many
	case rg.one[0].used:
		return rg.one[:]
	}
	return nil
}

// get returns region's state, added (kept sorted) if new.
func (rg *regions) get(region string) *regionState {
	all := rg.all()
	i, found := slices.BinarySearchFunc(all, region, func(a regionState, b string) int { return strings.Compare(a.region, b) })
	if found {
		return &all[i]
	}
	if len(all) == 0 {
		rg.one[0] = regionState{region: region, used: true}
		return &rg.one[0]
	}
	if rg.many == nil {
		rg.many = make([]regionState, 1, 2)
		rg.many[0], rg.one[0] = rg.one[0], regionState{}
	}
	rg.many = slices.Insert(rg.many, i, regionState{region: region, used: true})
	return &rg.many[i]
}

// regionState is a flow's latest final run in one region and its streak.
type regionState struct {
	region string
	used   bool  // (regions.one)
	final  bool  // a final run was seen
	ok     bool  // it passed
	last   int64 // its end, unix nanoseconds
	since  int64 // start of the streak's first slot, unix nanoseconds
	ext    *regionExt
}

// regionExt is what a region holds only while its latest final run failed
// or a retry chain is in progress; nil otherwise.
type regionExt struct {
	failing bool // the latest final run failed: what follows is its
	retries int
	fail    failInfo
	traces  []string // the failing streak's trace ids, newest first
	// The retry chain in progress: when its first attempt started and the
	// trace ids of its attempts so far (oldest first). The final run of
	// the chain decides whether they join the failing streak.
	chainStart int64
	pending    []string
}

func (s *Store) observeHistory(fd *flowData, r *result.Run) {
	if r.Start.Unix() < 0 || r.Start.Unix() >= math.MaxUint32 {
		return // no usable time (a hand-made run): nothing to place in a window
	}
	h := &fd.hist
	end := r.Start.Add(r.Duration)
	sec := end.Unix()
	final := r.Final()
	if final {
		h.counts.add(sec, r.OK())
		if st := r.Start.UnixNano(); h.first == 0 || st < h.first {
			h.first = st
		}
	}
	executed := 0
	for i := range r.Steps {
		st := &r.Steps[i]
		if st.Status == result.Skipped {
			continue
		}
		executed++
		if st.Dependency != "" && final {
			s.observeDependency(h, r.Flow, r.Region, st, sec)
		}
	}
	// Durations: one row for the run, with a column per executed step
	// (registered first, so that the row is wide enough).
	if (final || executed > 0) && (!s.sampleSome || s.sampled[r.Flow]) {
		ds := h.dur
		if ds == nil {
			ds = &durSamples{}
			h.dur = ds
		}
		for i := range r.Steps {
			if st := &r.Steps[i]; st.Status != result.Skipped && !slices.Contains(ds.steps, st.Name) {
				ds.steps = append(ds.steps, st.Name)
			}
		}
		row := ds.row(uint32(sec), 1+len(ds.steps), uint32(s.sampleAge/time.Second), s.sampleMax)
		if final {
			row[0] = micros(r.Duration)
		}
		for i := range r.Steps {
			if st := &r.Steps[i]; st.Status != result.Skipped {
				row[1+slices.Index(ds.steps, st.Name)] = micros(st.Duration)
			}
		}
	}
	s.observeRegion(h, r, end)
}

// observeDependency counts one call of a final run: a call an immediate
// retry went on to clear is a blip, not a dependency failure (as the
// dependency_success rule says).
func (s *Store) observeDependency(h *flowHist, flow, region string, st *result.Step, sec int64) {
	d := s.deps[st.Dependency]
	if d == nil {
		d = s.newDep(st.Dependency)
	}
	d.called(h, flow)
	ok := st.Status == result.Passed
	d.counts.add(sec, ok)
	rc := d.byRegion[region]
	if rc == nil {
		if d.byRegion == nil {
			d.byRegion = map[string]*counter[uint32, uint32]{}
		}
		rc = &counter[uint32, uint32]{}
		d.byRegion[strings.Clone(region)] = rc
	}
	rc.add(sec, ok)
}

func (s *Store) observeRegion(h *flowHist, r *result.Run, end time.Time) {
	rs := h.regs.get(r.Region)
	start := r.Start.UnixNano()
	if !r.Final() {
		// A failed attempt the runner retries at once: part of the slot's
		// chain, decided by its final run.
		if rs.ext == nil {
			rs.ext = &regionExt{}
		}
		e := rs.ext
		if r.Retry == 0 || e.chainStart == 0 {
			e.chainStart, e.pending = start, e.pending[:0]
		}
		if len(e.pending) < maxTraces {
			e.pending = append(e.pending, strings.Clone(r.TraceID))
		}
		return
	}
	var chainStart int64
	var pending, traces []string
	if e := rs.ext; e != nil {
		chainStart, pending = e.chainStart, e.pending
		if e.failing {
			traces = e.traces
		}
	}
	slot := start
	if r.Retry > 0 && chainStart != 0 && chainStart < start {
		slot = chainStart
	}
	ok := r.OK()
	if !rs.final || rs.ok != ok {
		rs.since, traces = slot, nil
	}
	rs.final, rs.ok, rs.last = true, ok, end.UnixNano()
	if ok {
		rs.ext = nil // no failure, no chain in progress
		return
	}
	// Newest first: this run, then its chain's earlier attempts, then the
	// streak's older runs.
	n := min(1+len(pending)+len(traces), maxTraces)
	ts := make([]string, 0, n)
	ts = append(ts, strings.Clone(r.TraceID))
	for i := len(pending) - 1; i >= 0 && len(ts) < n; i-- {
		ts = append(ts, pending[i])
	}
	for _, t := range traces {
		if len(ts) == n {
			break
		}
		ts = append(ts, t)
	}
	if rs.ext == nil {
		rs.ext = &regionExt{}
	}
	e := rs.ext
	e.failing, e.retries, e.fail, e.traces = true, r.Retry, failureOf(r), ts
	e.chainStart, e.pending = 0, e.pending[:0]
}

// failureOf copies what a page needs of a failed run. The strings are
// cloned: an actual value may be a slice of a large response body.
func failureOf(r *result.Run) failInfo {
	f := failInfo{class: string(r.Class), step: r.FailedStep}
	if st := r.Failed(); st != nil {
		f.step, f.dependency, f.class = st.Name, st.Dependency, string(st.Class)
		if len(st.Failures) > 0 {
			x := st.Failures[0]
			f.expectation, f.actual, f.message = strings.Clone(x.Expectation), strings.Clone(x.Actual), strings.Clone(x.Message)
		}
	}
	return f
}

// RegionState is a flow's latest final run in one region, and the streak of
// final runs with the same outcome that it continues.
type RegionState struct {
	Region string
	Last   time.Time // when the latest final run ended
	OK     bool
	// Since is when the streak began: the start of the first attempt of
	// its first schedule slot.
	Since time.Time
	// Retries is how many immediate retries agreed with the latest final
	// failure (the Retry of that run).
	Retries int
	// What failed in the latest final run, when it failed.
	Step, Dependency, Class, Expectation, Actual, Message string
	// TraceIDs of the failing streak, newest first, retried attempts
	// included, at most 5; nil while passing.
	TraceIDs []string
}

// Regions returns flow's state in every region that has reported a final
// run, sorted by region.
func (s *Store) Regions(flow string) []RegionState {
	var out []RegionState
	s.EachRegion(flow, func(n int, rs RegionState) {
		if out == nil {
			out = make([]RegionState, 0, n)
		}
		out = append(out, rs)
	})
	return out
}

// EachRegion calls fn with flow's state in every region that has reported
// a final run, sorted by region, and how many regions there are at most:
// Regions without a copy (rules read 10,000 flows every few seconds). fn
// runs under the store's read lock: it must not call the store. rs is
// passed by value: a pointer would move it to the heap at every call
// (2 MB of garbage per rule cycle at 10,000 flows).
func (s *Store) EachRegion(flow string, fn func(n int, rs RegionState)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	fd := s.flows[flow]
	if fd == nil {
		return
	}
	all := fd.hist.regs.all() // kept sorted
	for i := range all {
		rs := &all[i]
		if !rs.final {
			continue
		}
		st := RegionState{Region: rs.region, Last: time.Unix(0, rs.last), OK: rs.ok,
			Since: time.Unix(0, rs.since)}
		if e := rs.ext; e != nil && e.failing {
			f := &e.fail
			st.Retries, st.TraceIDs = e.retries, slices.Clone(e.traces)
			st.Step, st.Dependency, st.Class = f.step, f.dependency, f.class
			st.Expectation, st.Actual, st.Message = f.expectation, f.actual, f.message
		}
		fn(len(all), st)
	}
}

// FlowCounts counts flow's final runs that ended in (at-window, at], over
// all regions: those that passed, and all. The window is rounded to the
// buckets of the finest resolution holding its start (10s up to 10
// minutes back, 1m up to an hour, 10m up to 6 hours, 1h up to 3 days), to
// the nearest bucket edge.
func (s *Store) FlowCounts(flow string, window time.Duration, at time.Time) (good, total int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	fd := s.flows[flow]
	if fd == nil {
		return 0, 0
	}
	return fd.hist.counts.sum(at, window)
}

// DependencyCounts counts the calls to dependency (executed steps marked
// with it, in final runs, over all flows) that ended in (at-window, at],
// rounded as FlowCounts: successful ones, and all.
func (s *Store) DependencyCounts(dependency string, window time.Duration, at time.Time) (good, total int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d := s.deps[dependency]
	if d == nil {
		return 0, 0
	}
	return d.counts.sum(at, window)
}

// FlowHistorySince is when flow's counted history begins: the start of the
// first final run counted (kept across restarts by SaveHistory and
// LoadHistory); zero when there is none. A window that begins before it
// holds less than its span of runs: rules must not judge it yet.
func (s *Store) FlowHistorySince(flow string) time.Time {
	s.mu.RLock()
	defer s.mu.RUnlock()
	fd := s.flows[flow]
	if fd == nil || fd.hist.first == 0 {
		return time.Time{}
	}
	return time.Unix(0, fd.hist.first)
}

// Resolution is the bucket width counts are read at for a window that
// starts back before now: a window's ends are rounded to it (by up to half
// of it), so a window meant to end before an event ends a bucket earlier.
func Resolution(back time.Duration) time.Duration {
	for _, tr := range tiers {
		if back <= time.Duration(tr.width*(tr.n-1))*time.Second {
			return time.Duration(tr.width) * time.Second
		}
	}
	return time.Duration(tiers[len(tiers)-1].width) * time.Second
}

// RegionCount is what one region counted.
type RegionCount struct {
	Region      string
	Good, Total int
}

// DependencyRegionCounts is DependencyCounts per region (of the prober that
// ran the calls), sorted by region; regions without calls in the window are
// left out.
func (s *Store) DependencyRegionCounts(dependency string, window time.Duration, at time.Time) []RegionCount {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d := s.deps[dependency]
	if d == nil {
		return nil
	}
	out := make([]RegionCount, 0, len(d.byRegion))
	for reg, c := range d.byRegion {
		if g, n := c.sum(at, window); n > 0 {
			out = append(out, RegionCount{Region: reg, Good: g, Total: n})
		}
	}
	slices.SortFunc(out, func(a, b RegionCount) int { return strings.Compare(a.Region, b.Region) })
	return out
}

// Slower counts the durations of flow's step (with step "" the
// durations of flow's final runs) in runs that ended in (at-window, at],
// retried runs included: those above threshold, and all. A latency rule
// fires on slower/n > 1-q, which is the q-quantile (by nearest rank) above
// threshold: what Prometheus reads exactly from the le bucket at the
// threshold. Only the runs kept (the last hour, at most 1,000, unless
// SetSampleRetention says otherwise) are seen: a longer window is cut to
// them.
func (s *Store) Slower(flow, step string, threshold, window time.Duration, at time.Time) (slower, n int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ds, col, ok := s.durations(flow, step)
	if !ok {
		return 0, 0
	}
	return ds.slower(col, threshold, at, window)
}

// durations finds the duration samples and column of flow's step (column
// 0, step "": the flow's final runs); under s.mu.
func (s *Store) durations(flow, step string) (h *durSamples, col int, ok bool) {
	fd := s.flows[flow]
	if fd == nil || fd.hist.dur == nil {
		return nil, 0, false
	}
	if step == "" {
		return fd.hist.dur, 0, true
	}
	i := slices.Index(fd.hist.dur.steps, step)
	if i < 0 {
		return nil, 0, false
	}
	return fd.hist.dur, 1 + i, true
}

// Dependencies lists the dependencies called in final runs, sorted.
func (s *Store) Dependencies() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.deps))
	for d := range s.deps {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

// DependencyFlows lists the flows whose steps called dependency, sorted.
func (s *Store) DependencyFlows(dependency string) []string {
	names := s.sortedNames()
	s.mu.RLock()
	defer s.mu.RUnlock()
	d := s.deps[dependency]
	if d == nil {
		return nil
	}
	return s.callersLocked(d, names, []string{})
}

// newDep adds a dependency, with a free bit if there is one.
func (s *Store) newDep(name string) *depHist {
	d := &depHist{bit: -1}
	if free := ^s.depBits; free != 0 {
		d.bit = bits.TrailingZeros64(free)
		s.depBits |= 1 << d.bit
	}
	s.deps[name] = d
	return d
}

// called notes that flow (whose history is h, if it has one here) calls
// d.
func (d *depHist) called(h *flowHist, flow string) {
	if d.bit >= 0 && h != nil {
		h.deps |= 1 << d.bit
		return
	}
	if _, ok := d.callers[flow]; !ok {
		if d.callers == nil {
			d.callers = map[string]struct{}{}
		}
		d.callers[flow] = struct{}{}
	}
}

// callersLocked appends the flows calling d to out, sorted; names are the
// flows' names, sorted (sortedNames: a flow added since is left out).
func (s *Store) callersLocked(d *depHist, names []string, out []string) []string {
	start := len(out)
	if d.bit >= 0 {
		for _, f := range names {
			if fd := s.flows[f]; fd != nil && fd.hist.deps&(1<<d.bit) != 0 {
				out = append(out, f)
			}
		}
	}
	if len(d.callers) > 0 {
		n := len(out)
		for f := range d.callers {
			if fd := s.flows[f]; d.bit >= 0 && fd != nil && fd.hist.deps&(1<<d.bit) != 0 {
				continue // listed
			}
			out = append(out, f)
		}
		if len(out) > n {
			slices.Sort(out[start:])
		}
	}
	return out
}

// SetSampleRetention bounds the durations kept per flow for quantiles: those
// of runs in the last age, at most n runs. Latency rules with windows longer
// than an hour need it raised; it applies as runs arrive. Memory grows with
// it: 4 bytes per run and column (the run and each step).
func (s *Store) SetSampleRetention(age time.Duration, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sampleAge = min(max(age, time.Second), time.Duration(math.MaxUint32)*time.Second)
	s.sampleMax = max(n, 1)
}

// SetSampledFlows keeps duration samples (what Slower reads) only for
// flows; nil keeps them for every flow, the default. Only latency rules read
// them, and an hour of every flow's durations is about 1.5 KB a flow (15 MB
// at 10,000 flows) that nothing reads when no rule names the flow. Samples
// of flows no longer listed are dropped; a newly listed flow's start with
// its next run.
func (s *Store) SetSampledFlows(flows []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if flows == nil {
		s.sampleSome, s.sampled = false, nil
		return
	}
	s.sampleSome, s.sampled = true, make(map[string]bool, len(flows))
	for _, f := range flows {
		s.sampled[f] = true
	}
	for name, fd := range s.flows {
		if !s.sampled[name] {
			fd.hist.dur = nil
		}
	}
}

// dropHistory forgets removed flows' calls to dependencies (their bits
// went with them), and the dependencies that no remaining flow calls. A
// dependency still called keeps the removed flows' past calls in its
// counts: they were real calls.
func (s *Store) dropHistory(removed []string) {
	var called uint64
	for _, fd := range s.flows {
		called |= fd.hist.deps
	}
	for name, d := range s.deps {
		for _, f := range removed {
			delete(d.callers, f)
		}
		if len(d.callers) == 0 && (d.bit < 0 || called&(1<<d.bit) == 0) {
			delete(s.deps, name)
			if d.bit >= 0 {
				s.depBits &^= 1 << d.bit
			}
		}
	}
}
