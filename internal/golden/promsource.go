package golden

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/prober-dev/prober/internal/rulekind"
)

// PromSourceOptions tune NewPromSource.
type PromSourceOptions struct {
	// MaxAge is how old a region's last final run of flow may be before
	// the region is unknown (the daemon passes 2×interval + timeout); nil
	// or a non-positive answer means 5 minutes.
	MaxAge func(flow string) time.Duration
	Logger *slog.Logger // default: NewPromAPI's
}

// The queries a PromSource sends. The state queries select every flow and
// region at once: an evaluation cycle costs the same few queries for one
// flow or ten thousand (the engine asks flow by flow; answers come from a
// snapshot per evaluation time).
const (
	queryLastRun = `prober_last_run_timestamp_seconds`
	querySuccess = `prober_last_run_success`
	querySince   = `prober_flow_state_since_timestamp_seconds`
	queryFailure = `prober_last_failure_info`
	// querySeen serves Flows, Regions, and regions that stopped reporting
	// (their series are stale, so the instant queries no longer show
	// them). max, not last: a restarted prober reports 0 until it runs.
	querySeen = `max by (flow, region) (max_over_time(prober_last_run_timestamp_seconds[1d]))`
	// exemplarSelector: prober_runs_total carries the trace id of each
	// failing final run as an exemplar.
	exemplarSelector = `prober_runs_total{result="failure"}`
)

const (
	// seenTTL is how long the day-long list (querySeen) is reused: it is
	// the costliest query (a day of samples) and changes slowly; a new
	// flow or region shows within this.
	seenTTL = time.Minute
	// exemplarLookback bounds how far back trace ids are looked for: a
	// page needs a few recent ones, not a day's.
	exemplarLookback = time.Hour
	// maxRetriesPerRun caps the retries per failing run read from
	// counters (extrapolated, and swollen by earlier cleared blips): the
	// configuration allows at most 3.
	maxRetriesPerRun = 3
	// minRetriesWindow leaves increase() at least a few scrapes.
	minRetriesWindow = 2 * time.Minute
	// snapshotsKept bounds the per-evaluation-time cache: concurrent
	// evaluators and signals looking back need few.
	snapshotsKept = 4
)

// NewPromSource reads the rules' data from a Prometheus-compatible API
// (Prometheus, Thanos, Mimir, Amazon Managed Prometheus) that scrapes every
// region's probers: the evaluator in evaluate role sees all regions
// through it. Every answer is PromQL at the evaluation time. A region is
// unknown when its last final run is older than MaxAge, or when its series
// are stale or gone (the target went away or its scrapes stopped): absent
// data is never health. Query errors are returned (the engine makes the
// rules Unknown); missing trace ids or retry counts are not errors.
//
// What metrics cannot say: RegionState.Last is when the last final run
// started (not ended), Actual is empty (unbounded values are not labels),
// Message is "<expectation> failed", TraceIDs are of final failing runs
// only (retried attempts carry none on prober_runs_total), and Retries is
// estimated from counters (see retries).
func NewPromSource(a v1.API, o PromSourceOptions) Source {
	q := newPromQL(a, o.Logger)
	return &promSource{q: q, maxAge: o.MaxAge, log: q.log, snaps: map[int64]*promSnapshot{}}
}

type promSource struct {
	q      *promQL
	maxAge func(string) time.Duration
	log    *slog.Logger

	mu    sync.Mutex
	snaps map[int64]*promSnapshot // by evaluation time

	exWarned atomic.Bool

	seenMu    sync.Mutex // one day-long query at a time
	seen      []seenRow
	seenAt    time.Time // the evaluation time seen answers
	seenFetch time.Time // when it was asked (wall clock)
	seenSet   bool
}

type flowRegion struct{ flow, region string }

// seenRow is a flow reported by a region in the last day, and its newest
// run start (zero if it reported only series, no run yet).
type seenRow struct {
	flowRegion
	last time.Time
}

func (s *promSource) age(flow string) time.Duration {
	if s.maxAge != nil {
		if d := s.maxAge(flow); d > 0 {
			return d
		}
	}
	return defaultMaxAge
}

// --- flows and regions seen --------------------------------------------------

// seenList returns querySeen's answer at about at, reusing one within
// seenTTL of it; a zero at (Flows, which has no evaluation time) reuses
// one asked for within seenTTL. Errors are not kept: the next call tries
// again.
func (s *promSource) seenList(ctx context.Context, at time.Time) ([]seenRow, error) {
	s.seenMu.Lock()
	defer s.seenMu.Unlock()
	switch {
	case !s.seenSet || len(s.seen) == 0: // nothing yet is cheap to ask again
	case at.IsZero() && time.Since(s.seenFetch) < seenTTL:
		return s.seen, nil
	case !at.IsZero() && at.Sub(s.seenAt).Abs() < seenTTL:
		return s.seen, nil
	}
	if at.IsZero() {
		at = time.Now()
	}
	v, err := s.q.vector(ctx, querySeen, at)
	if err != nil {
		return nil, err
	}
	rows := make([]seenRow, 0, len(v))
	for _, smp := range v {
		f := string(smp.Metric["flow"])
		if f == "" {
			continue
		}
		rows = append(rows, seenRow{flowRegion{f, string(smp.Metric["region"])}, unixTime(float64(smp.Value))})
	}
	s.seen, s.seenAt, s.seenFetch, s.seenSet = rows, at, time.Now(), true
	return rows, nil
}

// noteSeen adds the live series' flows and regions to the day's list
// between its refreshes: a flow or region that starts reporting is
// listed at once, not a minute later.
func (s *promSource) noteSeen(live map[flowRegion]time.Time) {
	s.seenMu.Lock()
	defer s.seenMu.Unlock()
	if !s.seenSet {
		return
	}
	idx := make(map[flowRegion]int, len(s.seen))
	for i, r := range s.seen {
		idx[r.flowRegion] = i
	}
	var rows []seenRow // copied on first change: readers hold the old slice
	for k, t := range live {
		i, ok := idx[k]
		if ok && !t.After(s.seen[i].last) {
			continue
		}
		if rows == nil {
			rows = slices.Clone(s.seen)
		}
		if ok {
			rows[i].last = t
		} else {
			rows = append(rows, seenRow{k, t})
		}
	}
	if rows != nil {
		s.seen = rows
	}
}

// Flows lists the flows that reported in the last day, sorted: as of the
// list the evaluation cycle reads anyway (the interface gives Flows no
// evaluation time), or as of now.
func (s *promSource) Flows(ctx context.Context) ([]string, error) {
	rows, err := s.seenList(ctx, time.Time{})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range rows {
		out = append(out, r.flow)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func (s *promSource) Regions(ctx context.Context, flows []string, at time.Time) ([]RegionSeen, error) {
	rows, err := s.seenList(ctx, at)
	if err != nil {
		return nil, err
	}
	last := map[string]time.Time{}
	for _, r := range rows {
		if len(flows) > 0 && !slices.Contains(flows, r.flow) {
			continue
		}
		if t, ok := last[r.region]; !ok || r.last.After(t) {
			last[r.region] = r.last
		}
	}
	return sortedRegions(last), nil
}

// --- region states -------------------------------------------------------------

// promSnapshot is every flow's region states at one evaluation time, from
// one round of queries; trace ids and retries are read on first need (only
// failing regions need them).
type promSnapshot struct {
	at    time.Time
	ready chan struct{}
	err   error

	states map[string][]RegionState // by flow, sorted by region
	// failingSince is the earliest streak start of a failing known region:
	// where the exemplar lookup begins.
	failingSince time.Time

	exOnce sync.Once
	traces map[flowRegion][]string

	mu      sync.Mutex
	retries map[time.Duration]*retryCounts
}

type retryCounts struct {
	once sync.Once
	n    map[flowRegion]int
}

// snapshot returns the snapshot at at, loading it once however many flows
// (and concurrent callers) ask.
func (s *promSource) snapshot(ctx context.Context, at time.Time) (*promSnapshot, error) {
	key := at.UnixNano()
	s.mu.Lock()
	sn := s.snaps[key]
	if sn == nil {
		sn = &promSnapshot{at: at, ready: make(chan struct{})}
		s.snaps[key] = sn
		for len(s.snaps) > snapshotsKept {
			oldest := int64(math.MaxInt64)
			for k := range s.snaps {
				oldest = min(oldest, k)
			}
			delete(s.snaps, oldest)
		}
		s.mu.Unlock()
		sn.err = s.load(ctx, sn)
		if sn.err != nil && ctx.Err() != nil {
			// Our caller gave up, not Prometheus: let the next one try.
			s.mu.Lock()
			if s.snaps[key] == sn {
				delete(s.snaps, key)
			}
			s.mu.Unlock()
		}
		close(sn.ready)
	} else {
		s.mu.Unlock()
		select {
		case <-sn.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return sn, sn.err
}

// noName leaves __name__ out of series identities.
var noName = map[model.LabelName]struct{}{model.MetricNameLabel: {}}

// failureLabels are prober_last_failure_info's own labels: without them
// its identity is that of the flow's other series.
var failureLabels = map[model.LabelName]struct{}{model.MetricNameLabel: {},
	"step": {}, "class": {}, "dependency": {}, "expectation": {}}

// byIdentity indexes a vector by series identity (labels but those left
// out) and, for series whose identity differs from the timestamp's (a
// relabelling that touches some metrics only), by flow and region.
type byIdentity struct {
	id map[uint64]*model.Sample
	fr map[flowRegion]*model.Sample
}

func index(v model.Vector, without map[model.LabelName]struct{}) byIdentity {
	b := byIdentity{id: make(map[uint64]*model.Sample, len(v)), fr: make(map[flowRegion]*model.Sample, len(v))}
	for _, smp := range v {
		if smp == nil || smp.Histogram != nil {
			continue
		}
		sig := model.SignatureWithoutLabels(smp.Metric, without)
		// Several series for one identity or region (only the failure
		// info can, briefly): the newest value wins.
		if o := b.id[sig]; o == nil || smp.Value > o.Value {
			b.id[sig] = smp
		}
		k := flowRegion{string(smp.Metric["flow"]), string(smp.Metric["region"])}
		if o := b.fr[k]; o == nil || smp.Value > o.Value {
			b.fr[k] = smp
		}
	}
	return b
}

func (b byIdentity) get(sig uint64, k flowRegion) (*model.Sample, bool) {
	if smp, ok := b.id[sig]; ok {
		return smp, true
	}
	smp, ok := b.fr[k]
	return smp, ok
}

// load runs the state queries at sn.at, concurrently, and builds every
// flow's region states.
func (s *promSource) load(ctx context.Context, sn *promSnapshot) error {
	queries := [...]string{queryLastRun, querySuccess, querySince, queryFailure}
	var (
		wg      sync.WaitGroup
		vecs    [len(queries)]model.Vector
		errs    [len(queries)]error
		seen    []seenRow
		seenErr error
	)
	for i, q := range queries {
		wg.Go(func() { vecs[i], errs[i] = s.q.vector(ctx, q, sn.at) })
	}
	wg.Go(func() { seen, seenErr = s.seenList(ctx, sn.at) })
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		return err
	}
	if seenErr != nil {
		// Only regions that went silent are missing from the states: the
		// live ones are all there. Worth a warning, not an Unknown.
		s.log.Warn("prometheus_regions_seen_unavailable", "error", seenErr.Error())
	}
	success, since, failure := index(vecs[1], noName), index(vecs[2], noName), index(vecs[3], failureLabels)

	// The newest timestamp series per flow and region (two probers in one
	// region, or a target that moved: the one that ran last speaks).
	type best struct {
		smp *model.Sample
		sig uint64
	}
	latest := make(map[flowRegion]best, len(vecs[0]))
	for _, smp := range vecs[0] {
		if smp == nil || smp.Histogram != nil {
			continue
		}
		k := flowRegion{string(smp.Metric["flow"]), string(smp.Metric["region"])}
		// 0 (or NaN): the prober has the flow but no final run since it
		// started; that region has not reported it.
		if k.flow == "" || !(smp.Value > 0) {
			continue
		}
		if b, ok := latest[k]; !ok || smp.Value > b.smp.Value {
			latest[k] = best{smp, model.SignatureWithoutLabels(smp.Metric, noName)}
		}
	}
	lastRuns := make(map[flowRegion]time.Time, len(latest))
	for k, b := range latest {
		lastRuns[k] = unixTime(float64(b.smp.Value))
	}
	s.noteSeen(lastRuns)
	sn.states = make(map[string][]RegionState, len(latest)/2+1)
	for k, b := range latest {
		last := unixTime(float64(b.smp.Value))
		rs := RegionState{Region: k.region, Last: last}
		ok, known := success.get(b.sig, k)
		if known {
			// Fresh: a sample at sn.at (the series is not stale) of a
			// run recent enough.
			rs.Known = sn.at.Sub(last) <= s.age(k.flow)
			rs.Failing = ok.Value == 0
		}
		if smp, ok := since.get(b.sig, k); ok && smp.Value > 0 {
			rs.Since = unixTime(float64(smp.Value))
		}
		if rs.Failing {
			if f, ok := failure.get(model.SignatureWithoutLabels(b.smp.Metric, failureLabels), k); ok {
				m := f.Metric
				rs.Step, rs.Class, rs.Dependency = string(m["step"]), string(m["class"]), string(m["dependency"])
				rs.Expectation = string(m["expectation"])
				if rs.Expectation != "" {
					// The actual value is not in metrics (unbounded).
					rs.Message = rs.Expectation + " failed"
				}
			}
			if rs.Known && !rs.Since.IsZero() && (sn.failingSince.IsZero() || rs.Since.Before(sn.failingSince)) {
				sn.failingSince = rs.Since
			}
		}
		sn.states[k.flow] = append(sn.states[k.flow], rs)
	}
	// Regions that reported in the last day but have no live series now:
	// unknown, as the store keeps a region that stopped reporting.
	for _, r := range seen {
		if r.last.IsZero() {
			continue
		}
		if _, ok := latest[r.flowRegion]; ok {
			continue
		}
		sn.states[r.flow] = append(sn.states[r.flow], RegionState{Region: r.region, Last: r.last})
	}
	for _, rs := range sn.states {
		slices.SortFunc(rs, func(a, b RegionState) int { return strings.Compare(a.Region, b.Region) })
	}
	return nil
}

func (s *promSource) FlowStates(ctx context.Context, flow string, at time.Time) ([]RegionState, error) {
	if at.IsZero() {
		at = time.Now()
	}
	sn, err := s.snapshot(ctx, at)
	if err != nil {
		return nil, err
	}
	src := sn.states[flow]
	if len(src) == 0 {
		return nil, nil
	}
	out := slices.Clone(src)
	for i := range out {
		rs := &out[i]
		if !rs.Known || !rs.Failing {
			continue
		}
		k := flowRegion{flow, rs.Region}
		rs.TraceIDs = slices.Clone(s.traces(ctx, sn)[k])
		rs.Retries = s.retries(ctx, sn, flow)[k]
	}
	return out, nil
}

// traces reads the trace ids of failing final runs from prober_runs_total's
// exemplars, once per snapshot for every failing region: newest first, at
// most maxTraceIDs per region, from its streak only. Without exemplar
// storage there are none, which is not an error.
func (s *promSource) traces(ctx context.Context, sn *promSnapshot) map[flowRegion][]string {
	sn.exOnce.Do(func() {
		start := sn.at.Add(-exemplarLookback)
		if sn.failingSince.After(start) {
			start = sn.failingSince
		}
		ctx, cancel := context.WithTimeout(ctx, s.q.timeout)
		defer cancel()
		res, err := s.q.api.QueryExemplars(ctx, exemplarSelector, start.Add(-time.Second), sn.at)
		if err != nil {
			// Warned once per outage: a backend without the endpoint
			// (or with exemplar storage off) would say so every cycle.
			level := slog.LevelDebug
			if !s.exWarned.Swap(true) {
				level = slog.LevelWarn
			}
			s.log.Log(ctx, level, "prometheus_exemplars_unavailable", "error", s.q.wrap(exemplarSelector, err).Error(),
				"note", "pages go without trace ids")
			return
		}
		s.exWarned.Store(false)
		type stamped struct {
			id string
			at model.Time
		}
		all := map[flowRegion][]stamped{}
		for _, r := range res {
			k := flowRegion{string(r.SeriesLabels["flow"]), string(r.SeriesLabels["region"])}
			var since time.Time
			for _, rs := range sn.states[k.flow] {
				if rs.Region == k.region {
					since = rs.Since
				}
			}
			for _, e := range r.Exemplars {
				id := string(e.Labels["trace_id"])
				// The exemplar is stamped when the run ended, after its
				// start (the streak's since); a second of slack for
				// clocks rounding to milliseconds.
				if id == "" || e.Timestamp.Time().Before(since.Add(-time.Second)) {
					continue
				}
				all[k] = append(all[k], stamped{id, e.Timestamp})
			}
		}
		sn.traces = make(map[flowRegion][]string, len(all))
		for k, ex := range all {
			slices.SortStableFunc(ex, func(a, b stamped) int { return cmp.Compare(b.at, a.at) })
			var ids []string
			for _, e := range ex {
				if !slices.Contains(ids, e.id) {
					ids = append(ids, e.id)
					if len(ids) == maxTraceIDs {
						break
					}
				}
			}
			sn.traces[k] = ids
		}
	})
	return sn.traces
}

// retries estimates how many immediate retries agreed with each failing
// region's failures: retried attempts per failing final run over the
// flow's freshness window (at least two of its runs). While a flow fails
// every final run follows the configured number of failed retries, so
// the ratio is that number; a blip cleared by a retry just before the
// streak can inflate it, hence rounding and the cap. One query per
// distinct window, and only while something fails.
func (s *promSource) retries(ctx context.Context, sn *promSnapshot, flow string) map[flowRegion]int {
	w := max(s.age(flow), minRetriesWindow).Round(time.Second)
	sn.mu.Lock()
	if sn.retries == nil {
		sn.retries = map[time.Duration]*retryCounts{}
	}
	rc := sn.retries[w]
	if rc == nil {
		rc = &retryCounts{}
		sn.retries[w] = rc
	}
	sn.mu.Unlock()
	rc.once.Do(func() {
		q := retriesQuery(w)
		v, err := s.q.vector(ctx, q, sn.at)
		if err != nil {
			s.log.Warn("prometheus_retries_unavailable", "error", err.Error())
			return
		}
		rc.n = make(map[flowRegion]int, len(v))
		for _, smp := range v {
			x := float64(smp.Value)
			if math.IsNaN(x) || x <= 0 {
				continue
			}
			rc.n[flowRegion{string(smp.Metric["flow"]), string(smp.Metric["region"])}] = int(min(math.Round(x), maxRetriesPerRun))
		}
	})
	return rc.n
}

func retriesQuery(w time.Duration) string {
	r := model.Duration(w).String()
	return `sum by (flow, region) (increase(prober_run_retries_total[` + r + `]))` +
		` / sum by (flow, region) (increase(prober_runs_total{result="failure"}[` + r + `]) > 0)`
}

// --- counts and quantiles --------------------------------------------------------

func (s *promSource) FlowRatio(ctx context.Context, flow string, window time.Duration, at time.Time) (float64, float64, error) {
	q := rulekind.FlowRunsQuery(flow, window)
	return s.ratio(ctx, q, "result", at)
}

func (s *promSource) DependencyRatio(ctx context.Context, dependency string, window time.Duration, at time.Time) (float64, float64, error) {
	q := rulekind.DependencyCallsQuery(dependency, window, "result")
	return s.ratio(ctx, q, "result", at)
}

// DependencyRegionRatios counts the calls per region label of the
// probers that made them.
func (s *promSource) DependencyRegionRatios(ctx context.Context, dependency string, window time.Duration, at time.Time) ([]RegionRatio, error) {
	q := rulekind.DependencyCallsQuery(dependency, window, "region", "result")
	v, err := s.q.vector(ctx, q, at)
	if err != nil {
		return nil, err
	}
	return regionRatios(v), nil
}

// regionRatios sums a "sum by (region, result)" answer per region, sorted
// by region: the "success" series are good, all of them the total.
func regionRatios(v model.Vector) []RegionRatio {
	by := map[string]*RegionRatio{}
	var out []RegionRatio
	for _, smp := range v {
		x := float64(smp.Value)
		if math.IsNaN(x) || x < 0 {
			continue
		}
		reg := string(smp.Metric["region"])
		r := by[reg]
		if r == nil {
			r = &RegionRatio{Region: reg}
			by[reg] = r
		}
		r.Total += x
		if smp.Metric["result"] == "success" {
			r.Good += x
		}
	}
	for _, r := range by {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b RegionRatio) int { return strings.Compare(a.Region, b.Region) })
	return out
}

// minCoverageSlack is the least slack FlowCovers allows: a scrape interval
// (commonly 1m) and then some, so that the first scrape counts.
const minCoverageSlack = 2 * time.Minute

// FlowCovers: a series of the flow's run counter had a sample near the
// window's start (within half the freshness bound, at least
// minCoverageSlack). Prometheus keeps the counters across the probers'
// restarts (increase handles the resets), so only a flow (or a
// Prometheus) younger than the window is not covered.
func (s *promSource) FlowCovers(ctx context.Context, flow string, window time.Duration, at time.Time) (bool, error) {
	slack := max(s.age(flow)/2, minCoverageSlack)
	if slack >= window {
		return true, nil
	}
	q := rulekind.CoverageQuery(flow, slack)
	v, err := s.q.vector(ctx, q, at.Add(-window).Add(slack))
	if err != nil {
		return false, err
	}
	return len(v) > 0, nil
}

// ratio sums a "sum by (label)" answer: the "success" series is good, all
// of them are the total. No series: no runs (0 of 0).
func (s *promSource) ratio(ctx context.Context, q, label string, at time.Time) (good, total float64, err error) {
	v, err := s.q.vector(ctx, q, at)
	if err != nil {
		return 0, 0, err
	}
	for _, smp := range v {
		x := float64(smp.Value)
		if math.IsNaN(x) || x < 0 {
			continue
		}
		total += x
		if smp.Metric[model.LabelName(label)] == "success" {
			good += x
		}
	}
	return good, total, nil
}

func (s *promSource) Slower(ctx context.Context, flow, step string, threshold, window time.Duration, at time.Time) (float64, float64, error) {
	bucket, count := rulekind.LatencySeries(flow, step, threshold)
	w := promDuration(window)
	qw := `sum(increase(` + bucket + `[` + w + `]))`
	qn := `sum(increase(` + count + `[` + w + `]))`
	var (
		wg         sync.WaitGroup
		vw, vn     model.Vector
		errW, errN error
	)
	wg.Go(func() { vw, errW = s.q.vector(ctx, qw, at) })
	wg.Go(func() { vn, errN = s.q.vector(ctx, qn, at) })
	wg.Wait()
	if err := errors.Join(errW, errN); err != nil {
		return 0, 0, err
	}
	if len(vn) == 0 {
		return 0, 0, nil
	}
	n := float64(vn[0].Value)
	if math.IsNaN(n) || n <= 0 {
		return 0, 0, nil
	}
	if len(vw) == 0 {
		// Durations but no bucket at the threshold: a prober whose
		// configuration lacks the rule. Unknown, rather than all slow.
		return 0, 0, fmt.Errorf("no le=%q bucket in %s: the probers' configuration must have this latency rule", number(threshold.Seconds()), count)
	}
	within := float64(vw[0].Value)
	return max(n-within, 0), n, nil
}

// Certificates reads the certificate gauge: the earliest not-after per
// flow, step and host over the regions (no issuer: it is not a label).
func (s *promSource) Certificates(ctx context.Context, flows []string, at time.Time) ([]rulekind.Certificate, error) {
	v, err := s.q.vector(ctx, rulekind.CertExpiryQuery(flows, nil), at)
	if err != nil {
		return nil, err
	}
	out := make([]rulekind.Certificate, 0, len(v))
	for _, smp := range v {
		t := unixTime(float64(smp.Value))
		if t.IsZero() {
			continue
		}
		m := smp.Metric
		out = append(out, rulekind.Certificate{Flow: string(m["flow"]), Step: string(m["step"]), Host: string(m["host"]), NotAfter: t})
	}
	slices.SortFunc(out, func(a, b rulekind.Certificate) int {
		return cmp.Or(strings.Compare(a.Flow, b.Flow), strings.Compare(a.Step, b.Step), strings.Compare(a.Host, b.Host))
	})
	return out, nil
}

func (s *promSource) Query(ctx context.Context, promql string, at time.Time) ([]Sample, error) {
	return s.q.Query(ctx, promql, at)
}

// --- helpers ---------------------------------------------------------------------

// unixTime is a gauge of Unix seconds as a time; zero for 0 or less.
func unixTime(sec float64) time.Time {
	if !(sec > 0) || math.IsInf(sec, 0) {
		return time.Time{}
	}
	s, frac := math.Modf(sec)
	return time.Unix(int64(s), int64(math.Round(frac*1e9))).UTC()
}

// promDuration is a window in PromQL's syntax (1h, 5m, 1d); at least a
// second.
var promDuration = rulekind.Window

// compile-time check: the source answers what the engine asks.
var (
	_ Source                = (*promSource)(nil)
	_ HistoryCoverage       = (*promSource)(nil)
	_ DependencyRegions     = (*promSource)(nil)
	_ rulekind.Certificates = (*promSource)(nil)
)
