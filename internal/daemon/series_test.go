package daemon

import (
	"fmt"
	"maps"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/metrics"
)

// The shipped probes.yaml and flows load, secrets included, with the step
// kinds and notifiers the binary registers (config alone knows neither).
func TestShippedConfigLoads(t *testing.T) {
	env := map[string]string{"SHOP_PASSWORD": "Hunter2:Secret!"}
	_, err := config.Load(os.DirFS("../.."), "probes.yaml", config.Options{Notifiers: NotifierKinds(), StepKinds: StepKinds(),
		Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		t.Fatal(err)
	}
}

// seriesBudget is the default level's budget for a flow of n main steps
// (issue 20): 15 series for one step, 40 for four, and the line through
// them for other sizes.
func seriesBudget(n int) int { return 15 + (n-1)*25/3 }

// The shipped flows (probes.yaml and flows/, with their rules) export no
// more than the budget at the default level; the detailed level, which is
// what every flow exported before the levels, is logged for comparison.
func TestSeriesBudget(t *testing.T) {
	cfg, err := config.Load(os.DirFS("../.."), "probes.yaml", config.Options{SkipSecrets: true, Notifiers: NotifierKinds(), StepKinds: StepKinds(),
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

// certFlow makes two TLS handshakes with the sandbox shop's HTTPS side: a
// tls step and an HTTPS request; each exports its certificate's expiry.
const certFlow = `name: cert
every: 1s
tls: {insecure_skip_verify: true}
steps:
  - name: handshake
    tls: {address: "${env:SHOP_TLS_ADDR}", verify: false}
  - name: home
    request: {url: "https://${env:SHOP_TLS_ADDR}/healthz"}
    expect: [status == 200]
`

// The calculator's count (prober validate's) is what a real scrape of a
// daemon with that configuration shows, flow by flow, at both levels, once
// each flow has passed a run (certificate series included).
func TestSeriesCountIsScraped(t *testing.T) {
	detailedHealth := strings.Replace(healthFlow("deep"), "every: 1s\n", "every: 1s\nmetrics: detailed\n", 1)
	f := newFixture(t, fixtureOpts{files: map[string]string{
		"probes.yaml":         probes("checkout", "health", "deep", "cert"),
		"flows/checkout.yaml": checkoutFlow(t),
		"flows/health.yaml":   healthFlow("health"),
		"flows/deep.yaml":     detailedHealth,
		"flows/cert.yaml":     certFlow,
	}})
	cfg, err := config.Load(os.DirFS(f.dir), "probes.yaml", config.Options{SkipSecrets: true, Notifiers: NotifierKinds(), StepKinds: StepKinds(),
		Env: func(k string) (string, bool) {
			if strings.HasSuffix(k, "_URL") {
				return "http://127.0.0.1:1", true
			}
			if k == "SHOP_TLS_ADDR" {
				return "127.0.0.1:1", true
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
		for _, fl := range []string{"checkout", "health", "deep", "cert"} {
			if r := st.Latest(fl); r == nil || !r.OK() {
				return false
			}
		}
		return true
	})
	// A run that failed before (a timeout on a loaded machine) leaves its
	// class's series, which the calculator's steady state has not: those
	// flows are counted without them.
	failedBefore := map[string]bool{}
	for _, fl := range []string{"checkout", "health", "deep", "cert"} {
		for _, r := range st.Recent(fl, 0) {
			failedBefore[fl] = failedBefore[fl] || !r.OK()
		}
	}
	got, certs := map[string]int{}, 0
	for _, s := range f.metrics() {
		fl := string(s.Metric["flow"])
		if c, ok := s.Metric["class"]; ok && c != "ok" && failedBefore[fl] {
			continue
		}
		if fl != "" && strings.HasPrefix(string(s.Metric["__name__"]), "prober_") {
			got[fl]++
		}
		if s.Metric["__name__"] == "prober_cert_expiry_timestamp_seconds" {
			certs++
			if s.Metric["flow"] != "cert" || s.Metric["host"] != model.LabelValue(f.sb.TLSAddr) {
				t.Errorf("certificate series %v, want flow cert, host %s", s.Metric, f.sb.TLSAddr)
			}
		}
	}
	if certs != 2 {
		t.Errorf("%d certificate series, want 2 (the tls step and the HTTPS request)", certs)
	}
	if !maps.Equal(got, want) {
		t.Errorf("scrape: %v series per flow, calculator %v", got, want)
	}
	// The status page's footer shows the total.
	total := 0
	for _, n := range want {
		total += n
	}
	if _, _, page := f.get("/", ""); !strings.Contains(page, fmt.Sprintf(" · %d series exported", total)) {
		t.Errorf("status page footer lacks %d series: %s", total, page[max(0, strings.Index(page, "<footer")):])
	}
}

// Every per-flow metric that the exported Prometheus rules and the
// engine's Prometheus source read exists at the default level for the
// shipped flows, so both work at either level.
func TestDefaultLevelServesRulesAndSource(t *testing.T) {
	cfg, err := config.Load(os.DirFS("../.."), "probes.yaml", config.Options{SkipSecrets: true, Notifiers: NotifierKinds(), StepKinds: StepKinds(),
		Env: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	names := func(level string) map[string]bool {
		for _, f := range cfg.Flows {
			f.Metrics = level
		}
		reg := prometheus.NewRegistry()
		m := metrics.New(reg, "r", metrics.BuildInfo{})
		m.SetFlows(Shapes(cfg))
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, mf := range mfs {
			out[mf.GetName()] = true
			if mf.GetType() == dto.MetricType_HISTOGRAM {
				for _, s := range []string{"_bucket", "_sum", "_count"} {
					out[mf.GetName()+s] = true
				}
			}
		}
		return out
	}
	detailed, dflt := names(config.MetricsDetailed), names(config.MetricsDefault)
	if len(dflt) >= len(detailed) {
		t.Fatalf("default level: %d names, detailed %d", len(dflt), len(detailed))
	}
	nameRE := regexp.MustCompile(`prober_[a-z_]+`)
	for _, file := range []string{"../../deploy/prometheus/prober.rules.yml", "../golden/promsource.go"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		read := 0
		for _, n := range nameRE.FindAllString(string(b), -1) {
			if !detailed[n] {
				continue // not a per-flow family (recording rules, the alert metrics)
			}
			read++
			if !dflt[n] {
				t.Errorf("%s reads %s, which the default metric level does not export", file, n)
			}
		}
		if read == 0 {
			t.Errorf("%s reads no per-flow metric", file)
		}
	}
}
