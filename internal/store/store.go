// Package store keeps the most recent runs of each flow in memory, bounded,
// for the status page, the results API and the rules; and, for the rules'
// longer windows (up to 3 days), compact history: bucketed counts of final
// runs and dependency calls, recent durations, and each region's current
// streak (see history.go).
package store

import (
	"encoding/hex"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prober-dev/prober/internal/result"
)

// Bounds over all flows, so that 10,000 flows cost megabytes, not
// gigabytes: a run kept in full (steps, timings, URLs, failures), encoded,
// costs about 80 bytes a step; a summary 48 bytes.
const (
	// FullBudget is how many runs are kept in full over all flows: with n
	// flows, each keeps its newest FullBudget/n runs in full (at least one,
	// at most keep), the rest of its keep as summaries. Up to 100 flows
	// keep 100 runs in full each.
	FullBudget = 10_000
	// RunBudget bounds the runs (full or summarised) kept over all flows:
	// with n flows each keeps min(keep, max(MinKeep, RunBudget/n)).
	RunBudget = 300_000
	// MinKeep is what every flow keeps whatever the number of flows: the
	// status page shows the last 30 runs.
	MinKeep = 30
)

// Store is a set of per-flow rings of runs, with their history. Safe for
// concurrent use.
type Store struct {
	mu    sync.RWMutex
	keep  int // runs kept per flow, as configured
	flows map[string]*flowData
	names []string // flows' names, sorted; nil when a flow came or went
	deps  map[string]*depHist
	// depBits are the bits (depHist.bit) in use.
	depBits uint64
	// nflows is the number of configured flows (Retain), 0 before: the
	// budgets divide by it.
	nflows int
	// Duration samples kept per series (SetSampleRetention), and for
	// which flows (SetSampledFlows; all while sampleSome is false).
	sampleAge  time.Duration
	sampleMax  int
	sampleSome bool
	sampled    map[string]bool
	scratch    []byte // where a run is encoded (Observe)
	shots      shots  // the newest screenshots' bytes (screenshots.go)
	// older reads the runs older than a flow's full ones from the run
	// history on disk (SetOlder); nil: they are kept here as summaries.
	older OlderRuns
}

// OlderRuns is where runs pushed out of the memory's full ones are read
// back from: the run history on disk (Archive).
type OlderRuns interface {
	// RunsBefore returns up to n of flow's runs that started before
	// before (unix ns), newest first.
	RunsBefore(flow string, before int64, n int) []*result.Run
}

// flowData is one flow's recent runs and history, in one allocation.
type flowData struct {
	ring
	hist flowHist
}

// ring holds a flow's newest runs in full and, unless the older ones are
// on disk (SetOlder), older ones as summaries.
type ring struct {
	full  []fullRun // the newest runs, a ring (len <= the full bound)
	fnext int       // where the next full run goes once full is at its bound
	// sm is what summaries need; nil with the older runs on disk, where
	// the newest run is all a flow holds (10,000 flows: 1 each).
	sm *summaries
}

// summaries are a ring's runs older than its full ones, and the summaries
// its full runs become when newer runs push them out.
type summaries struct {
	full  []summary // full[i]'s run summarised
	sums  []summary // older runs, a ring (len <= keep - the full bound)
	snext int
	// What summaries share: the flow's labels (its latest run's), and
	// the names of regions and failed steps they index.
	labels  map[string]string
	regions []string
	steps   []string
	// What only some summaries need (failed runs, mostly), by
	// summary.ext; an entry goes when its summary does.
	exts    map[uint32]*sumExt
	nextExt uint32
}

// fullRun is a run kept in full, encoded (runcodec.go).
type fullRun struct {
	enc    []byte
	labels map[string]string
}

// summary is a run kept without its steps: what the status page's strip,
// the API and a page's evidence read. 48 bytes and no pointers, so that
// the collector does not scan the 300,000 of 10,000 flows.
type summary struct {
	start int64    // unix ns
	trace [16]byte // hex-decoded; ext's trace when not 32 lowercase hex digits
	id    [8]byte  // hex-decoded; ext's id when not 16 lowercase hex digits
	dur   uint32   // µs, saturating (71 minutes)
	late  uint32   // start - planned, µs, saturating; planned is zero when flagNoPlan
	ext   uint32   // key in ring.exts; 0: none (the run passed and all fitted)
	class uint8    // index in result.Classes; ext's class when flagOddClass
	step  uint8    // 1 + index in ring.steps of the failed step; 0: none
	flags uint8
	reg   uint8 // index in ring.regions
}

const (
	flagPassed = 1 << iota
	flagRetried
	flagRawTrace
	flagRawID
	flagOddClass
	flagNoPlan
	flagRawRegion // region in extra (more than 255 regions)
)

// sumExt is what only some summaries need: what failed, and what did not
// fit the summary (retry is here: only failures are retried).
type sumExt struct {
	failed                       bool // the run had a failed step: its name, class and first failure
	stepName, stepClass, message string
	runClass, retryOf            string
	trace, id, region            string
	retry                        int
}

// New returns a store keeping up to keep runs per flow (at least 1).
func New(keep int) *Store {
	return &Store{keep: max(keep, 1), flows: map[string]*flowData{}, deps: map[string]*depHist{},
		sampleAge: DefaultSampleAge, sampleMax: DefaultSamples}
}

// bounds are how many runs each flow keeps, and how many of them in full.
func (s *Store) bounds() (keep, full int) {
	keep = s.keep
	if s.nflows > 0 {
		keep = min(keep, max(MinKeep, RunBudget/s.nflows))
		full = min(keep, max(1, FullBudget/s.nflows))
		return keep, full
	}
	return keep, keep // flows not announced (tools, tests): all in full
}

// KeepPerFlow is how many runs each flow keeps at the current bounds.
func (s *Store) KeepPerFlow() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	keep, _ := s.bounds()
	return keep
}

// HeldPerFlow is how many of KeepPerFlow's runs each flow holds in memory:
// all of them, or with SetOlder its full ones only.
func (s *Store) HeldPerFlow() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	keep, full := s.bounds()
	if s.older != nil {
		return full
	}
	return keep
}

// SetOlder makes o the keeper of each flow's runs older than its full
// ones: memory then holds only the full runs (what the status page's
// state, the rules and the newest run's page read on every view), and
// Recent reads the older ones from o (the strip, a flow's page, the API).
// At 10,000 flows that is 29 summaries of 48 bytes a flow, 14 MB, which
// the run history on disk holds anyway. Summaries held already are
// dropped.
func (s *Store) SetOlder(o OlderRuns) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.older = o
	if o == nil {
		return
	}
	_, full := s.bounds()
	for _, fd := range s.flows {
		fd.ring = fd.rebound(full, full, false)
	}
}

// Observe stores a completed run and adds it to the history. The run must
// not be modified afterwards.
func (s *Store) Observe(r *result.Run) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fd := s.flows[r.Flow]
	if fd == nil {
		fd = &flowData{}
		s.flows[r.Flow] = fd
		s.names = nil
	}
	s.observeHistory(fd, r)
	s.pushRun(fd, s.keepShots(r))
}

// Restore puts runs (newest first, as Archive.Recent returns them) into
// flow's ring of recent runs after a restart, without counting them in the
// history: the rules' counts come back from their own snapshot
// (RestoreHistory), and the regions' streaks start afresh. A flow that has
// runs already keeps them as they are.
func (s *Store) Restore(flow string, runs []*result.Run) {
	if len(runs) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fd := s.flows[flow]
	if fd == nil {
		fd = &flowData{}
		s.flows[flow] = fd
		s.names = nil
	}
	if len(fd.full) > 0 {
		return
	}
	if _, full := s.bounds(); s.older != nil && len(runs) > full {
		runs = runs[:full] // the older ones are read from s.older
	}
	for i := len(runs) - 1; i >= 0; i-- {
		s.pushRun(fd, s.keepShots(runs[i]))
	}
}

// pushRun adds r as fd's newest run, pushing its oldest full run into the
// summaries (and the oldest summary out) at the bounds.
func (s *Store) pushRun(fd *flowData, r *result.Run) {
	keep, full := s.bounds()
	p := fd.sm
	if s.older == nil && p == nil {
		p = fd.summaries()
	}
	if p != nil {
		p.labels = r.Labels
	}
	if len(fd.full) < full {
		fd.full = append(fd.full, fullRun{enc: s.encode(nil, r), labels: r.Labels})
		if p != nil {
			p.full = append(p.full, p.summarize(r))
		}
		return
	}
	i := fd.fnext
	fd.fnext = (i + 1) % len(fd.full)
	if p != nil {
		if keep > len(fd.full) && s.older == nil {
			p.pushSummary(p.full[i], keep-len(fd.full))
		} else {
			p.dropExt(p.full[i])
		}
		p.full[i] = p.summarize(r)
	}
	fr := &fd.full[i]
	*fr = fullRun{enc: s.encode(fr.enc, r), labels: r.Labels}
}

// summaries returns rg.sm, made (for a ring whose older runs were on
// disk) with the summaries of the full runs it holds.
func (rg *ring) summaries() *summaries {
	if rg.sm == nil {
		rg.sm = &summaries{}
		for _, fr := range rg.full {
			rg.sm.full = append(rg.sm.full, rg.sm.summarize(decodeRun(fr.enc, "", fr.labels)))
		}
		if n := len(rg.full); n > 0 {
			rg.sm.labels = rg.full[(rg.fnext-1+n)%n].labels
		}
	}
	return rg.sm
}

// encode returns r encoded, in buf when it fits well (most runs of a flow
// encode to about the same size), else in a new slice of the exact size.
// Fitting well is at most an eighth to spare: a run kept is most of what
// a flow costs, and slack kept from a larger run (a failure's message) is
// paid by every flow that had one.
func (s *Store) encode(buf []byte, r *result.Run) []byte {
	s.scratch = appendRun(s.scratch[:0], r)
	n := len(s.scratch)
	if cap(buf) < n || cap(buf) > n+n/8 {
		buf = make([]byte, 0, n)
	}
	enc := append(buf[:0], s.scratch...)
	if cap(s.scratch) > 64<<10 { // a huge failure once: do not keep its buffer
		s.scratch = nil
	}
	return enc
}

// pushSummary adds sm as the newest summary, of at most n.
func (rg *summaries) pushSummary(sm summary, n int) {
	if len(rg.sums) < n {
		if rg.sums == nil {
			rg.sums = make([]summary, 0, min(n, MinKeep))
		}
		rg.sums = append(rg.sums, sm)
		return
	}
	rg.dropExt(rg.sums[rg.snext])
	rg.sums[rg.snext] = sm
	rg.snext = (rg.snext + 1) % len(rg.sums)
}

// dropExt forgets what only sm needed.
func (rg *summaries) dropExt(sm summary) {
	if sm.ext != 0 {
		delete(rg.exts, sm.ext)
	}
}

// summarize is r's summary for when it leaves the full runs.
func (rg *summaries) summarize(r *result.Run) summary {
	sm := summary{start: r.Start.UnixNano(), dur: sat32(r.Duration.Microseconds())}
	var e *sumExt
	ext := func() *sumExt {
		if e == nil {
			e = &sumExt{}
		}
		return e
	}
	if r.Start.IsZero() {
		sm.start = 0
	}
	if r.OK() {
		sm.flags |= flagPassed
	}
	if r.Retried {
		sm.flags |= flagRetried
	}
	if r.Planned.IsZero() {
		sm.flags |= flagNoPlan
	} else {
		sm.late = sat32(r.Start.Sub(r.Planned).Microseconds())
	}
	if !unhex(sm.trace[:], r.TraceID) {
		sm.flags |= flagRawTrace
		ext().trace = strings.Clone(r.TraceID)
	}
	if !unhex(sm.id[:], r.ID) {
		sm.flags |= flagRawID
		ext().id = strings.Clone(r.ID)
	}
	if i := slices.Index(result.Classes, r.Class); i >= 0 {
		sm.class = uint8(i)
	} else {
		sm.flags |= flagOddClass
		ext().runClass = string(r.Class)
	}
	if i := slices.Index(rg.regions, r.Region); i >= 0 {
		sm.reg = uint8(i)
	} else if len(rg.regions) < 255 {
		rg.regions = append(rg.regions, strings.Clone(r.Region))
		sm.reg = uint8(len(rg.regions) - 1)
	} else {
		sm.flags |= flagRawRegion
		ext().region = strings.Clone(r.Region)
	}
	if r.FailedStep != "" {
		if i := slices.Index(rg.steps, r.FailedStep); i >= 0 {
			sm.step = uint8(i + 1)
		} else if len(rg.steps) < 255 {
			rg.steps = append(rg.steps, strings.Clone(r.FailedStep))
			sm.step = uint8(len(rg.steps))
		} else {
			ext().stepName = strings.Clone(r.FailedStep)
		}
	}
	if r.Retry > 0 {
		ext().retry = r.Retry
	}
	if r.RetryOf != "" {
		ext().retryOf = strings.Clone(r.RetryOf)
	}
	// What failed, for the run's page and the API: the failed step's
	// first failure. The strings are cloned: a failure's actual value may
	// be a slice of a large body.
	if st := r.Failed(); st != nil {
		e := ext()
		e.failed, e.stepClass = true, string(st.Class)
		if sm.step == 0 || st.Name != r.FailedStep {
			e.stepName = strings.Clone(st.Name)
		}
		e.message = strings.Clone(st.Message())
	}
	if e != nil {
		sm.ext = rg.addExt(e)
	}
	return sm
}

// addExt keeps e in the side table and returns its key (never 0).
func (rg *summaries) addExt(e *sumExt) uint32 {
	if rg.exts == nil {
		rg.exts = map[uint32]*sumExt{}
	}
	for { // 0 is none; a key still in use after 2^32 is skipped
		rg.nextExt++
		if _, used := rg.exts[rg.nextExt]; rg.nextExt != 0 && !used {
			break
		}
	}
	rg.exts[rg.nextExt] = e
	return rg.nextExt
}

func sat32(v int64) uint32 { return uint32(min(max(v, 0), 1<<32-1)) }

// unhex decodes s, exactly len(dst)*2 lowercase hex digits, into dst.
func unhex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	_, err := hex.Decode(dst, []byte(s))
	return err == nil
}

// run rebuilds a summarised run: no steps, except, for a failed run, its
// failed step with its class and first failure.
func (rg *summaries) run(flow string, sm *summary, into *result.Run) {
	*into = result.Run{Flow: flow, Labels: rg.labels, Summarized: true,
		Duration: time.Duration(sm.dur) * time.Microsecond, Class: result.OK}
	e := rg.exts[sm.ext]
	if e == nil {
		e = &sumExt{}
	}
	if sm.start != 0 {
		into.Start = time.Unix(0, sm.start).UTC()
	}
	if sm.flags&flagNoPlan == 0 {
		into.Planned = into.Start.Add(-time.Duration(sm.late) * time.Microsecond)
	}
	into.Status = result.Failed
	if sm.flags&flagPassed != 0 {
		into.Status = result.Passed
	}
	into.Retried = sm.flags&flagRetried != 0
	if sm.flags&flagRawTrace != 0 {
		into.TraceID = e.trace
	} else {
		into.TraceID = hex.EncodeToString(sm.trace[:])
	}
	if sm.flags&flagRawID != 0 {
		into.ID = e.id
	} else {
		into.ID = hex.EncodeToString(sm.id[:])
	}
	if sm.flags&flagOddClass != 0 {
		into.Class = result.Class(e.runClass)
	} else {
		into.Class = result.Classes[sm.class]
	}
	if sm.flags&flagRawRegion != 0 {
		into.Region = e.region
	} else if int(sm.reg) < len(rg.regions) {
		into.Region = rg.regions[sm.reg]
	}
	if sm.step > 0 {
		into.FailedStep = rg.steps[sm.step-1]
	}
	into.Retry = e.retry
	into.RetryOf = e.retryOf
	if e.failed {
		name := into.FailedStep
		if e.stepName != "" {
			name = e.stepName
		}
		st := result.Step{Name: name, Status: result.Failed, Class: result.Class(e.stepClass)}
		if e.message != "" {
			st.Failures = []result.Failure{{Message: e.message}}
		}
		into.Steps = []result.Step{st}
	}
}

// Recent returns up to n runs of flow, newest first (all kept if n <= 0).
// The newest are the runs as observed; older ones are rebuilt from their
// summaries (Summarized is set).
// With SetOlder, the runs older than the full ones are read from it,
// outside the lock (a disk read must not hold up Observe).
func (s *Store) Recent(flow string, n int) []*result.Run {
	s.mu.RLock()
	fd := s.flows[flow]
	if fd == nil {
		s.mu.RUnlock()
		return nil
	}
	older := s.older
	if older == nil {
		defer s.mu.RUnlock()
		return recentLocked(flow, &fd.ring, n)
	}
	keep, _ := s.bounds()
	if n <= 0 || n > keep {
		n = keep
	}
	out := recentLocked(flow, &fd.ring, n)
	s.mu.RUnlock()
	if len(out) == 0 || len(out) >= n || out[len(out)-1].Start.IsZero() {
		return out
	}
	return append(out, older.RunsBefore(flow, out[len(out)-1].Start.UnixNano(), n-len(out))...)
}

func recentLocked(flow string, rg *ring, n int) []*result.Run {
	var p summaries
	if rg.sm != nil {
		p = *rg.sm
	}
	total := len(rg.full) + len(p.sums)
	if n <= 0 || n > total {
		n = total
	}
	out := make([]*result.Run, 0, n)
	nf := len(rg.full)
	newest := (rg.fnext - 1 + nf) % max(nf, 1)
	for i := 0; i < nf && len(out) < n; i++ {
		fr := &rg.full[(newest-i+nf)%nf]
		out = append(out, decodeRun(fr.enc, flow, fr.labels))
	}
	if len(out) == n {
		return out
	}
	ns := len(p.sums)
	rebuilt := make([]result.Run, n-len(out)) // one allocation for them all
	newest = (p.snext - 1 + ns) % max(ns, 1)
	for i := 0; len(out) < n; i++ {
		r := &rebuilt[i]
		rg.sm.run(flow, &p.sums[(newest-i+ns)%ns], r)
		out = append(out, r)
	}
	return out
}

// NewestFinal says whether flow's newest run passed, read from its
// encoding's head without decoding the run (the status page asks it of
// every flow at each view: decoding 10,000 runs was 18 MB of garbage).
// ok is false when the flow has no run or its newest run is not final (a
// retry followed it): then the caller reads the runs (Recent).
func (s *Store) NewestFinal(flow string) (passed, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	fd := s.flows[flow]
	if fd == nil || len(fd.full) == 0 {
		return false, false
	}
	nf := len(fd.full)
	fr := &fd.full[(fd.fnext-1+nf)%nf]
	retried, passed, whole := runHead(fr.enc)
	if !whole || retried {
		return false, false
	}
	return passed, true
}

// Latest returns the newest run of flow, or nil.
func (s *Store) Latest(flow string) *result.Run {
	if rs := s.Recent(flow, 1); len(rs) == 1 {
		return rs[0]
	}
	return nil
}

// Flows lists the flows with stored runs, sorted.
func (s *Store) Flows() []string {
	return slices.Clone(s.sortedNames())
}

// sortedNames returns the flows' names, sorted, which nothing modifies
// (a change of the set makes a new list): read without the lock.
func (s *Store) sortedNames() []string {
	s.mu.RLock()
	names := s.names
	s.mu.RUnlock()
	if names == nil {
		// Sorted once per change of the set, not per call: rules list
		// 10,000 flows every few seconds.
		s.mu.Lock()
		if s.names == nil {
			s.names = make([]string, 0, len(s.flows))
			for f := range s.flows {
				s.names = append(s.names, f)
			}
			slices.Sort(s.names)
		}
		names = s.names
		s.mu.Unlock()
	}
	return names
}

// Retain drops the runs and history of flows not in flows (after a reload
// removed them) and applies a new per-flow bound. flows is the configured
// set: its size divides the budgets (FullBudget, RunBudget).
func (s *Store) Retain(flows []string, keep int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := make(map[string]bool, len(flows))
	for _, f := range flows {
		want[f] = true
	}
	var removed []string
	for f := range s.flows {
		if !want[f] {
			removed = append(removed, f)
			delete(s.flows, f)
			s.names = nil
		}
	}
	if len(removed) > 0 {
		s.dropHistory(removed)
	}
	oldKeep, oldFull := s.bounds()
	s.keep, s.nflows = max(keep, 1), len(want)
	newKeep, newFull := s.bounds()
	if newKeep == oldKeep && newFull == oldFull {
		return
	}
	if s.older != nil {
		newKeep = newFull // the older runs are on disk
	}
	for _, fd := range s.flows {
		fd.ring = fd.rebound(newKeep, newFull, s.older == nil)
	}
}

// rebound returns the ring's newest keep runs, the newest full of them in
// full, the others as summaries (if sums, else none: they are on disk). A
// run once summarised stays so.
func (rg *ring) rebound(keep, full int, sums bool) ring {
	var out ring
	p := rg.sm
	if sums {
		p = rg.summaries()
		out.sm = &summaries{labels: p.labels, regions: p.regions, steps: p.steps, nextExt: p.nextExt}
	}
	keepExt := func(sm summary) {
		if out.sm == nil {
			return
		}
		if e := p.exts[sm.ext]; e != nil {
			if out.sm.exts == nil {
				out.sm.exts = map[uint32]*sumExt{}
			}
			out.sm.exts[sm.ext] = e
		}
	}
	nf, ns := len(rg.full), 0
	if p != nil {
		ns = len(p.sums)
	}
	total := min(nf+ns, keep)
	// Oldest first: i counts back from the newest (0).
	for i := total - 1; i >= 0; i-- {
		var fr fullRun
		var sm summary
		if i < nf {
			k := (rg.fnext - 1 - i + 2*nf) % nf
			fr = rg.full[k]
			if p != nil {
				sm = p.full[k]
			}
		} else {
			sm = p.sums[(p.snext-1-(i-nf)+2*ns)%ns]
		}
		keepExt(sm)
		if i >= full {
			out.sm.pushSummary(sm, keep-full) // older than the full ones
			continue
		}
		if fr.enc == nil { // a summary among the newest: kept as summarised
			var r result.Run
			p.run("", &sm, &r)
			fr.enc, fr.labels = appendRun(nil, &r), r.Labels
		}
		out.full = append(out.full, fr) // full at the bound or not, the oldest is at 0
		if out.sm != nil {
			out.sm.full = append(out.sm.full, sm)
		}
	}
	return out
}
