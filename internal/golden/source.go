package golden

import (
	"cmp"
	"context"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/rulekind"
	"github.com/prober-dev/prober/internal/store"
)

// Querier runs instant PromQL queries.
type Querier interface {
	Query(ctx context.Context, promql string, at time.Time) ([]Sample, error)
}

// defaultMaxAge is how old a region's last final run may be when the caller
// gives no bound: about two one-minute intervals plus a timeout.
const defaultMaxAge = 5 * time.Minute

// NewStoreSource reads the in-process store. maxAge(flow) is how old a
// region's last final run may be before the region is unknown (the daemon
// passes 2×interval + timeout); nil or a non-positive answer means 5
// minutes. It must answer the same for a flow as long as the source is
// used: an engine asks once per flow. promql, which may be nil, answers
// PromQL rules and signals.
func NewStoreSource(st *store.Store, maxAge func(flow string) time.Duration, promql Querier) Source {
	return &storeSource{st: st, maxAge: maxAge, promql: promql}
}

type storeSource struct {
	st     *store.Store
	maxAge func(string) time.Duration
	promql Querier
}

func (s *storeSource) age(flow string) time.Duration {
	if s.maxAge != nil {
		if d := s.maxAge(flow); d > 0 {
			return d
		}
	}
	return defaultMaxAge
}

func (s *storeSource) Flows(ctx context.Context) ([]string, error) {
	if s.st == nil {
		return nil, nil
	}
	return s.st.Flows(), nil
}

func (s *storeSource) FlowStates(ctx context.Context, flow string, at time.Time) ([]RegionState, error) {
	if s.st == nil {
		return nil, nil
	}
	oldest := at.Add(-s.age(flow))
	var out []RegionState
	s.st.EachRegion(flow, func(n int, r store.RegionState) {
		if out == nil {
			out = make([]RegionState, 0, n)
		}
		out = append(out, regionState(&r, oldest))
	})
	return out, nil
}

// stateAppender is a source that reads a flow's states into a buffer the
// engine reuses (the store: reading cannot fail), FlowStates being
// appendFlowStates(nil, flow, at-flowMaxAge(flow)).
type stateAppender interface {
	// flowMaxAge is how old a region's last final run may be: the same for a
	// flow as long as the source lives (the engine asks once).
	flowMaxAge(flow string) time.Duration
	// appendFlowStates appends flow's states, known in the regions whose
	// last final run ended no earlier than oldest.
	appendFlowStates(dst []RegionState, flow string, oldest time.Time) []RegionState
}

func (s *storeSource) flowMaxAge(flow string) time.Duration { return s.age(flow) }

func (s *storeSource) appendFlowStates(dst []RegionState, flow string, oldest time.Time) []RegionState {
	if s.st == nil {
		return dst
	}
	s.st.EachRegion(flow, func(_ int, r store.RegionState) {
		dst = append(dst, regionState(&r, oldest))
	})
	return dst
}

// regionState is r as rules see it: known when its last final run ended
// no earlier than oldest.
func regionState(r *store.RegionState, oldest time.Time) RegionState {
	return RegionState{Region: r.Region, Known: !r.Last.Before(oldest), Failing: !r.OK,
		Since: r.Since, Last: r.Last, Retries: r.Retries, Step: r.Step, Dependency: r.Dependency,
		Class: r.Class, Expectation: r.Expectation, Actual: r.Actual, Message: r.Message, TraceIDs: r.TraceIDs}
}

func (s *storeSource) FlowRatio(ctx context.Context, flow string, window time.Duration, at time.Time) (float64, float64, error) {
	if s.st == nil {
		return 0, 0, nil
	}
	g, n := s.st.FlowCounts(flow, window, at)
	return float64(g), float64(n), nil
}

// FlowCovers: the flow's history (kept across restarts in the state dir)
// began no later than the window's start, give or take half the freshness
// bound (2×interval + timeouts: about one interval).
func (s *storeSource) FlowCovers(ctx context.Context, flow string, window time.Duration, at time.Time) (bool, error) {
	if s.st == nil {
		return false, nil
	}
	since := s.st.FlowHistorySince(flow)
	return !since.IsZero() && !since.After(at.Add(-window).Add(s.age(flow)/2)), nil
}

func (s *storeSource) DependencyRegionRatios(ctx context.Context, dependency string, window time.Duration, at time.Time) ([]RegionRatio, error) {
	if s.st == nil {
		return nil, nil
	}
	rc := s.st.DependencyRegionCounts(dependency, window, at)
	out := make([]RegionRatio, len(rc))
	for i, c := range rc {
		out[i] = RegionRatio{Region: c.Region, Good: float64(c.Good), Total: float64(c.Total)}
	}
	return out, nil
}

func (s *storeSource) DependencyRatio(ctx context.Context, dependency string, window time.Duration, at time.Time) (float64, float64, error) {
	if s.st == nil {
		return 0, 0, nil
	}
	g, n := s.st.DependencyCounts(dependency, window, at)
	return float64(g), float64(n), nil
}

func (s *storeSource) Slower(ctx context.Context, flow, step string, threshold, window time.Duration, at time.Time) (float64, float64, error) {
	if s.st == nil {
		return 0, 0, nil
	}
	slower, n := s.st.Slower(flow, step, threshold, window, at)
	return float64(slower), float64(n), nil
}

func (s *storeSource) Query(ctx context.Context, promql string, at time.Time) ([]Sample, error) {
	if s.promql == nil {
		return nil, ErrNoPromQL
	}
	return s.promql.Query(ctx, promql, at)
}

// regionsWindow is how far back "regions seen" looks: a region gone longer
// than a day is decommissioned, not silent.
const regionsWindow = 24 * time.Hour

func (s *storeSource) Regions(ctx context.Context, flows []string, at time.Time) ([]RegionSeen, error) {
	if s.st == nil {
		return nil, nil
	}
	if len(flows) == 0 {
		flows = s.st.Flows()
	}
	last := map[string]time.Time{}
	for _, f := range flows {
		s.st.EachRegion(f, func(_ int, r store.RegionState) {
			if at.Sub(r.Last) > regionsWindow {
				return
			}
			if t, ok := last[r.Region]; !ok || r.Last.After(t) {
				last[r.Region] = r.Last
			}
		})
	}
	return sortedRegions(last), nil
}

func sortedRegions(last map[string]time.Time) []RegionSeen {
	out := make([]RegionSeen, 0, len(last))
	for r, t := range last {
		out = append(out, RegionSeen{Region: r, Last: t})
	}
	slices.SortFunc(out, func(a, b RegionSeen) int { return strings.Compare(a.Region, b.Region) })
	return out
}

func (s *storeSource) DependencyFlows(ctx context.Context, dependency string) ([]string, error) {
	if s.st == nil {
		return nil, nil
	}
	return s.st.DependencyFlows(dependency), nil
}

// beforeEnd ends a window before t: the store rounds a window's end to the
// nearest edge of its buckets, so a window ending at t may count a bucket
// holding runs just after it.
func (s *storeSource) beforeEnd(t time.Time, window time.Duration, at time.Time) time.Time {
	return t.Add(-store.Resolution(at.Sub(t) + window))
}

// compile-time check: the store answers what the engine asks.
var (
	_ HistoryCoverage       = (*storeSource)(nil)
	_ DependencyRegions     = (*storeSource)(nil)
	_ rulekind.Certificates = (*storeSource)(nil)
)

// certRuns is how many of a flow's latest runs are read for the
// certificates its steps saw: a few per region, so that a step that failed
// before its handshake in the latest run still shows its certificate.
const certRuns = 20

// Certificates reads the cert.* attributes the steps of flows' latest runs
// recorded (tls steps, HTTPS steps reading their connection): a flow whose
// latest run recorded none is skipped without reading more.
func (s *storeSource) Certificates(ctx context.Context, flows []string, at time.Time) ([]rulekind.Certificate, error) {
	if s.st == nil {
		return nil, nil
	}
	if len(flows) == 0 {
		flows = s.st.Flows()
	}
	var out []rulekind.Certificate
	for _, f := range flows {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if last := s.st.Latest(f); last == nil || !hasCert(last) {
			continue
		}
		type key struct{ region, step, host string }
		seen := map[key]bool{}
		byHost := map[[2]string]int{} // step, host: index in out
		// Only the runs held in memory: older ones come from the history on
		// disk (a read a flow a cycle at 10,000 flows), and as summaries
		// they never carried a step's attributes anyway.
		for _, r := range s.st.Recent(f, min(certRuns, s.st.HeldPerFlow())) {
			for i := range r.Steps {
				st := &r.Steps[i]
				na := st.Attr("cert.not_after")
				if na == "" {
					continue
				}
				t, err := time.Parse(time.RFC3339, na)
				if err != nil {
					continue
				}
				host := stepHost(st.URL)
				k := key{r.Region, st.Name, host}
				if seen[k] {
					continue // a newer run of this region said
				}
				seen[k] = true
				c := rulekind.Certificate{Flow: f, Step: st.Name, Host: host, Issuer: st.Attr("cert.issuer"),
					Subject: st.Attr("cert.subject"), NotAfter: t}
				// The earliest over the regions: the one that expires first.
				if j, ok := byHost[[2]string{st.Name, host}]; !ok {
					byHost[[2]string{st.Name, host}] = len(out)
					out = append(out, c)
				} else if t.Before(out[j].NotAfter) {
					out[j] = c
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b rulekind.Certificate) int {
		return cmp.Or(strings.Compare(a.Flow, b.Flow), strings.Compare(a.Step, b.Step), strings.Compare(a.Host, b.Host))
	})
	return out, nil
}

func hasCert(r *result.Run) bool {
	for i := range r.Steps {
		if r.Steps[i].Attr("cert.not_after") != "" {
			return true
		}
	}
	return false
}

// stepHost is the host of a step's target (https://shop.example/pay,
// tls://shop.example:8443) as the certificate metric labels it: host, or
// host:port when the port is not 443.
func stepHost(target string) string {
	u, err := url.Parse(target)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(u.Host, ":443")
}
