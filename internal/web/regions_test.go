package web

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// fakeRegions answers fixed counts per window, fails the windows in
// fail, or (block) waits for the caller to give up; it counts its calls.
type fakeRegions struct {
	counts map[time.Duration][]RegionCount
	fail   map[time.Duration]bool
	block  bool
	calls  atomic.Int32
}

func (f *fakeRegions) RegionUptime(ctx context.Context, flow string, w time.Duration, _ time.Time) ([]RegionCount, error) {
	f.calls.Add(1)
	if f.block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if f.fail[w] || flow != "checkout" {
		return nil, errors.New("prometheus: 503")
	}
	return f.counts[w], nil
}

const (
	day   = 24 * time.Hour
	week  = 7 * day
	month = 30 * day
)

func threeRegions() *fakeRegions {
	return &fakeRegions{counts: map[time.Duration][]RegionCount{
		day:   {{"eu-west-1", 1440, 1440}, {"us-east-1", 1438.5, 1440}},
		week:  {{"eu-west-1", 10080, 10080}, {"us-east-1", 10070.2, 10080}},
		month: {{"ap-south-1", 7, 8}, {"eu-west-1", 43200, 43200}, {"us-east-1", 43190, 43200}},
	}, fail: map[time.Duration]bool{}}
}

// TestFlowPageRegionUptime: the evaluate role's flow page has a table
// of uptime per region and window; the figures are asked once a minute
// at most, whatever the page views; a window Prometheus failed shows
// "unknown" in its column.
func TestFlowPageRegionUptime(t *testing.T) {
	f := threeRegions()
	clock := testNow
	var mu sync.Mutex
	h := newHandler(func(o *Options) {
		o.Regions = f
		o.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	})
	res, body := do(t, h, "GET", "/flows/checkout")
	if res.StatusCode != 200 {
		t.Fatal(res.Status)
	}
	for _, w := range []string{
		`<h2>Uptime per region</h2>`,
		`<th scope="col">Region</th><th scope="col">24h</th><th scope="col">7d</th><th scope="col">30d</th>`,
		// Sorted by region; ap-south-1 only reported in the last 30 days.
		`<tr><td>ap-south-1</td><td class="up nodata" title="no runs in the last 24h">no data</td><td class="up nodata" title="no runs in the last 7d">no data</td><td class="up fail"`,
		`<tr><td>eu-west-1</td><td class="up pass" title="about 1440 of 1440 final runs passed in the last 24h (Prometheus, region eu-west-1)">100.00%</td>`,
		`>99.89%</td>`, `>99.90%</td>`, `>99.97%</td>`, `>87.50%</td>`,
		`<tr><td>us-east-1</td><td class="up fail" title="about 1439 of 1440 final runs passed in the last 24h (Prometheus, region us-east-1)">99.89%</td>`,
	} {
		if !strings.Contains(body, w) {
			t.Errorf("flow page lacks %q", w)
		}
	}
	if i, j := strings.Index(body, "<td>ap-south-1"), strings.Index(body, "<td>eu-west-1"); i < 0 || j < i {
		t.Error("regions not sorted")
	}
	if n := f.calls.Load(); n != 3 {
		t.Fatalf("%d queries for one view, want 3 (24h, 7d, 30d)", n)
	}

	// More views within the minute: no query.
	for range 5 {
		do(t, h, "GET", "/flows/checkout")
	}
	if n := f.calls.Load(); n != 3 {
		t.Errorf("%d queries after 6 views in a minute, want 3", n)
	}
	// A minute later Prometheus fails the 7d query: asked again, that
	// column unknown, the others kept.
	mu.Lock()
	clock = clock.Add(time.Minute)
	mu.Unlock()
	f.fail[week] = true
	res, body = do(t, h, "GET", "/flows/checkout")
	if n := f.calls.Load(); n != 6 || res.StatusCode != 200 {
		t.Errorf("%d queries, %s after a minute, want 6, 200", n, res.Status)
	}
	for _, w := range []string{`<td class="up nodata" title="Prometheus did not answer">unknown</td>`, `>99.89%</td>`, `>87.50%</td>`} {
		if !strings.Contains(body, w) {
			t.Errorf("flow page with 7d failing lacks %q", w)
		}
	}
	if strings.Contains(body, `>99.90%</td>`) {
		t.Error("the failed window's old figure is still shown")
	}

	// Another flow of the same page cache is asked for itself; without
	// Options.Regions the table is absent.
	if _, body := do(t, h, "GET", "/flows/browse"); !strings.Contains(body, "Uptime per region") || strings.Contains(body, "99.89%") {
		t.Error("browse shows checkout's figures, or none")
	}
	if _, body := do(t, newHandler(), "GET", "/flows/checkout"); strings.Contains(body, "per region") {
		t.Error("a table per region without Options.Regions")
	}
}

// TestFlowPageRegionUptimeOutage: Prometheus down or not answering shows
// "unknown" on a page that still works, after regionTimeout at most, and
// the concurrent views of the page wait for one set of queries.
func TestFlowPageRegionUptimeOutage(t *testing.T) {
	t.Run("down", func(t *testing.T) {
		f := threeRegions()
		f.fail = map[time.Duration]bool{day: true, week: true, month: true}
		res, body := do(t, newHandler(func(o *Options) { o.Regions = f }), "GET", "/flows/checkout")
		if res.StatusCode != 200 || !strings.Contains(body, `<span class="up nodata">unknown</span> <span class="muted">Prometheus did not answer`) ||
			!strings.Contains(body, "Configured steps") {
			t.Errorf("%s\n%s", res.Status, body)
		}
	})
	t.Run("no runs", func(t *testing.T) {
		f := &fakeRegions{counts: map[time.Duration][]RegionCount{}}
		_, body := do(t, newHandler(func(o *Options) { o.Regions = f }), "GET", "/flows/checkout")
		if !strings.Contains(body, `<span class="up nodata">no data</span> <span class="muted">no final runs in Prometheus in the last 30d`) {
			t.Error("no data not said")
		}
	})
	t.Run("hanging", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := &fakeRegions{block: true}
			h := newHandler(func(o *Options) { o.Regions = f; o.Now = time.Now })
			start := time.Now()
			var wg sync.WaitGroup
			bodies := make([]string, 4)
			for i := range bodies {
				wg.Go(func() {
					res, body := do(t, h, "GET", "/flows/checkout")
					if res.StatusCode != 200 {
						t.Errorf("view %d: %s", i, res.Status)
					}
					bodies[i] = body
				})
			}
			wg.Wait()
			if d := time.Since(start); d != regionTimeout {
				t.Errorf("pages took %s, want %s", d, regionTimeout)
			}
			if n := f.calls.Load(); n != 3 {
				t.Errorf("%d queries for 4 concurrent views, want 3", n)
			}
			for i, b := range bodies {
				if !strings.Contains(b, `<span class="up nodata">unknown</span>`) {
					t.Errorf("view %d does not say unknown", i)
				}
			}
			// The unknown is kept for the minute: the next view does not wait.
			before := time.Now()
			do(t, h, "GET", "/flows/checkout")
			if time.Since(before) != 0 || f.calls.Load() != 3 {
				t.Error("a view within the minute waited for Prometheus again")
			}
		})
	})
}
