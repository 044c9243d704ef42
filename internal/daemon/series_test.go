package daemon

import (
	"maps"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/metrics"
)

// seriesBudget is the default level's budget for a flow of n main steps
// (issue 20): 15 series for one step, 40 for four, and the line through
// them for other sizes.
func seriesBudget(n int) int { return 15 + (n-1)*25/3 }

// The shipped flows (probes.yaml and flows/, with their rules) export no
// more than the budget at the default level; the detailed level, which is
// what every flow exported before the levels, is logged for comparison.
func TestSeriesBudget(t *testing.T) {
	cfg, err := config.Load(os.DirFS("../.."), "probes.yaml", config.Options{SkipSecrets: true,
		Env: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Flows) < 2 {
		t.Fatalf("%d shipped flows", len(cfg.Flows))
	}
	for _, level := range []string{config.MetricsDefault, config.MetricsDetailed} {
		for _, f := range cfg.Flows {
			f.Metrics = level
		}
		counts := metrics.SeriesOf(Shapes(cfg))
		for _, f := range cfg.Flows {
			n, budget := counts[f.Name], seriesBudget(len(f.Steps))
			t.Logf("%-8s %-12s %d step(s) (+%d cleanup): %d series (budget %d)", level, f.Name, len(f.Steps), len(f.Cleanup), n, budget)
			if n == 0 {
				t.Errorf("%s: no series", f.Name)
			}
			if level == config.MetricsDefault && n > budget {
				t.Errorf("%s, %d step(s): %d series at the default level, over the budget of %d", f.Name, len(f.Steps), n, budget)
			}
		}
	}
}

// The calculator's count (prober validate's) is what a real scrape of a
// daemon with that configuration shows, flow by flow, at both levels.
func TestSeriesCountIsScraped(t *testing.T) {
	detailedHealth := strings.Replace(healthFlow("deep"), "every: 1s\n", "every: 1s\nmetrics: detailed\n", 1)
	f := newFixture(t, fixtureOpts{files: map[string]string{
		"probes.yaml":         probes("checkout", "health", "deep"),
		"flows/checkout.yaml": checkoutFlow(t),
		"flows/health.yaml":   healthFlow("health"),
		"flows/deep.yaml":     detailedHealth,
	}})
	cfg, err := config.Load(os.DirFS(f.dir), "probes.yaml", config.Options{SkipSecrets: true,
		Env: func(k string) (string, bool) {
			if strings.HasSuffix(k, "_URL") {
				return "http://127.0.0.1:1", true
			}
			return "", false
		}})
	if err != nil {
		t.Fatal(err)
	}
	want := metrics.SeriesOf(Shapes(cfg))
	if want["deep"] <= want["health"] {
		t.Fatalf("calculator: detailed %d series, default %d", want["deep"], want["health"])
	}
	f.serve()
	st := f.d.Store()
	waitFor(t, 15*time.Second, "a passing run of each flow", func() bool {
		for _, fl := range []string{"checkout", "health", "deep"} {
			if r := st.Latest(fl); r == nil || !r.OK() {
				return false
			}
		}
		return true
	})
	got := map[string]int{}
	for _, s := range f.metrics() {
		if fl := string(s.Metric["flow"]); fl != "" && strings.HasPrefix(string(s.Metric["__name__"]), "prober_") {
			got[fl]++
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("scrape: %v series per flow, calculator %v", got, want)
	}
}
