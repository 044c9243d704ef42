package daemon

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/metrics"
)

// A step whose retry: tried a 429 again exports it as
// prober_step_retries_total (the one 429, then 200s: 1 however many runs
// follow); a flow without a retry: block exports no such series. The
// calculator counts the series, and the flow stays within its budget.
func TestStepRetriesExported(t *testing.T) {
	var calls atomic.Int64
	limited := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(limited.Close)
	flaky := `name: flaky
every: 1s
steps:
  - name: quote
    request: {url: "` + limited.URL + `/quote"}
    retry: {attempts: 2, backoff: 1ms, max_backoff: 1ms}
    expect: [status == 200]
`
	f := newFixture(t, fixtureOpts{files: map[string]string{
		"probes.yaml":       probes("flaky", "health"),
		"flows/flaky.yaml":  flaky,
		"flows/health.yaml": healthFlow("health"),
	}})
	cfg, err := config.Load(os.DirFS(f.dir), "probes.yaml", config.Options{SkipSecrets: true, Notifiers: NotifierKinds(), StepKinds: StepKinds(),
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
	if budget := seriesBudget(1); want["flaky"] > budget {
		t.Errorf("flaky: %d series at the default level, over the budget of %d", want["flaky"], budget)
	}
	if want["flaky"] != want["health"]+1 {
		t.Errorf("calculator: flaky (a retry: block) %d series, health %d: want one more", want["flaky"], want["health"])
	}
	f.serve()
	st := f.d.Store()
	// Two passing runs of flaky: the first retried the 429, the second
	// needed no retry.
	waitFor(t, 15*time.Second, "two passing runs of flaky and one of health", func() bool {
		if r := st.Latest("health"); r == nil || !r.OK() {
			return false
		}
		return calls.Load() >= 3 && st.Latest("flaky") != nil && st.Latest("flaky").OK()
	})
	got, retries := map[string]int{}, map[string]float64{}
	for _, s := range f.metrics() {
		if fl := string(s.Metric["flow"]); fl != "" && strings.HasPrefix(string(s.Metric["__name__"]), "prober_") {
			got[fl]++
		}
		if s.Metric["__name__"] == "prober_step_retries_total" {
			retries[string(s.Metric["flow"])+"/"+string(s.Metric["step"])] = float64(s.Value)
		}
	}
	if w := map[string]float64{"flaky/quote": 1}; !maps.Equal(retries, w) {
		t.Errorf("prober_step_retries_total: %v, want %v", retries, w)
	}
	if !maps.Equal(got, want) {
		t.Errorf("scrape: %v series per flow, calculator %v", got, want)
	}
}

// The shipped flows stay within the default level's budget with a retry:
// block on every HTTP request (the 429s and 5xx it is for), each adding
// its retry counter, which the calculator counts. (A retry: costs one
// series a step: a one-step flow already at the budget, a TLS check with
// flow retries, goes one over with it, as it would with a dependency.)
func TestSeriesBudgetWithStepRetries(t *testing.T) {
	cfg, err := config.Load(os.DirFS("../.."), "probes.yaml", config.Options{SkipSecrets: true, Notifiers: NotifierKinds(), StepKinds: StepKinds(),
		Env: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	plain := metrics.SeriesOf(Shapes(cfg))
	retrying := map[string]int{}
	for _, f := range cfg.Flows {
		for _, st := range slices.Concat(f.Steps, f.Cleanup) {
			if st.Kind == "" { // HTTP
				st.Retry = &config.Retry{Attempts: 2, On: config.DefaultRetryOn}
				retrying[f.Name]++
			}
		}
	}
	if retrying["checkout"] == 0 {
		t.Fatal("no shipped HTTP step given a retry:")
	}
	counts := metrics.SeriesOf(Shapes(cfg))
	for _, f := range cfg.Flows {
		n, budget := counts[f.Name], seriesBudget(len(f.Steps))
		t.Logf("%-16s %d step(s) (+%d cleanup), %d retrying: %d series (budget %d; %d without)", f.Name, len(f.Steps), len(f.Cleanup), retrying[f.Name], n, budget, plain[f.Name])
		if want := plain[f.Name] + retrying[f.Name]; n != want {
			t.Errorf("%s: %d series with %d retry: blocks, want %d (one per step)", f.Name, n, retrying[f.Name], want)
		}
		if n > budget {
			t.Errorf("%s, %d step(s): %d series with retries, over the budget of %d", f.Name, len(f.Steps), n, budget)
		}
	}
}
