package web

import (
	"context"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RegionUptimes reads a flow's uptime per region where every region's
// results meet: the evaluate role's Prometheus, whose daemon has no run
// history of its own. Implementations must be safe for concurrent use.
type RegionUptimes interface {
	// RegionUptime counts flow's final runs per region in the window of
	// length window ending at at, and those that passed; a region without
	// runs in the window is absent. An error means unknown.
	RegionUptime(ctx context.Context, flow string, window time.Duration, at time.Time) ([]RegionCount, error)
}

// RegionCount is one region's final runs in a window. Counts from
// Prometheus are extrapolated (increase()), so not whole numbers.
type RegionCount struct {
	Region      string
	Good, Total float64
}

const (
	// regionTTL is how long a flow's figures are reused: a page view, or
	// a refreshing page, asks Prometheus at most once a minute per flow.
	regionTTL = time.Minute
	// regionTimeout bounds the wait for Prometheus: when it is down the
	// page shows "unknown" after this (and, the answer being cached, for
	// a minute without waiting again), never an error page.
	regionTimeout = 3 * time.Second
)

// regionCache keeps each flow's last figures, and lets one request ask
// Prometheus while the others for the same flow wait for its answer.
type regionCache struct {
	mu sync.Mutex
	m  map[string]*regionEntry
}

type regionEntry struct {
	at   time.Time     // when asked
	done chan struct{} // closed once v is set
	v    *regionUptimeView
}

// regionUptimeView is the flow page's table: a row per region, a column
// per window; or Status and Note instead when there is no row.
type regionUptimeView struct {
	Windows      []string
	Rows         []regionRow
	Status, Note string // "unknown" (Prometheus did not answer) or "no data", and why
}

type regionRow struct {
	Region string
	Cells  []uptimeView // one per window
}

// regionUptime is flow's figures per region, from the cache when younger
// than regionTTL. It waits at most regionTimeout (or until ctx is done).
func (s *server) regionUptime(ctx context.Context, flow string) *regionUptimeView {
	now := s.now()
	c := &s.regions
	c.mu.Lock()
	e := c.m[flow]
	if e == nil || now.Sub(e.at) >= regionTTL || now.Before(e.at) {
		for k, x := range c.m { // flows gone from the configuration
			if now.Sub(x.at) >= regionTTL && closed(x.done) {
				delete(c.m, k)
			}
		}
		if c.m == nil {
			c.m = map[string]*regionEntry{}
		}
		e = &regionEntry{at: now, done: make(chan struct{})}
		c.m[flow] = e
		c.mu.Unlock()
		// Not the request's context: the answer serves every page for
		// a minute, and a client going away must not cache "unknown".
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), regionTimeout)
		e.v = s.fetchRegions(qctx, flow, now)
		cancel()
		close(e.done)
	} else {
		c.mu.Unlock()
	}
	select {
	case <-e.done:
		return e.v
	case <-ctx.Done():
		return &regionUptimeView{Status: "unknown", Note: "the request ended before Prometheus answered"}
	}
}

func closed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// fetchRegions asks for every window at once and makes the table: the
// regions of any window, a window that failed shown "unknown".
func (s *server) fetchRegions(ctx context.Context, flow string, now time.Time) *regionUptimeView {
	answers := make([][]RegionCount, len(uptimeWindows))
	errs := make([]error, len(uptimeWindows))
	var wg sync.WaitGroup
	for i, w := range uptimeWindows {
		wg.Go(func() { answers[i], errs[i] = s.o.Regions.RegionUptime(ctx, flow, w.W, now) })
	}
	wg.Wait()
	v := &regionUptimeView{Windows: make([]string, len(uptimeWindows))}
	failed := 0
	idx := map[string]int{}
	for i, w := range uptimeWindows {
		v.Windows[i] = w.Name
		if errs[i] != nil {
			failed++
			continue
		}
		for _, rc := range answers[i] {
			if _, ok := idx[rc.Region]; !ok {
				idx[rc.Region] = len(v.Rows)
				v.Rows = append(v.Rows, regionRow{Region: rc.Region})
			}
		}
	}
	switch {
	case failed == len(uptimeWindows):
		return &regionUptimeView{Status: "unknown", Note: "Prometheus did not answer; figures again within a minute"}
	case len(v.Rows) == 0 && failed == 0:
		return &regionUptimeView{Status: "no data", Note: "no final runs in Prometheus in the last " + uptimeWindows[len(uptimeWindows)-1].Name}
	}
	// Regions sorted: the answers are, but a region may first appear in a
	// later (longer) window.
	slices.SortFunc(v.Rows, func(a, b regionRow) int { return strings.Compare(a.Region, b.Region) })
	for r := range v.Rows {
		idx[v.Rows[r].Region] = r
		v.Rows[r].Cells = make([]uptimeView, len(uptimeWindows))
		for i, w := range uptimeWindows {
			if errs[i] != nil {
				v.Rows[r].Cells[i] = uptimeView{Window: w.Name, Text: "unknown", CSS: "nodata", Title: "Prometheus did not answer"}
			} else {
				v.Rows[r].Cells[i] = uptimeView{Window: w.Name, Text: "no data", CSS: "nodata", Title: "no runs in the last " + w.Name}
			}
		}
	}
	for i, w := range uptimeWindows {
		for _, rc := range answers[i] {
			v.Rows[idx[rc.Region]].Cells[i] = regionCell(w.Name, rc)
		}
	}
	return v
}

// regionCell is one region's figure in one window, as uptime's.
func regionCell(window string, rc RegionCount) uptimeView {
	if !(rc.Total > 0) {
		return uptimeView{Window: window, Text: "no data", CSS: "nodata", Title: "no runs in the last " + window}
	}
	good := min(max(rc.Good, 0), rc.Total)
	c := uptimeView{Window: window, Text: percentF(good, rc.Total), CSS: "pass"}
	if good < rc.Total {
		c.CSS = "fail"
	}
	n := math.Round(rc.Total)
	c.Title = "about " + strconv.FormatFloat(math.Round(good), 'f', 0, 64) + " of " + strconv.FormatFloat(n, 'f', 0, 64) +
		" final runs passed in the last " + window + " (Prometheus, region " + rc.Region + ")"
	return c
}
