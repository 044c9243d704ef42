package e2e

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Real Prometheus from Debian's package, started per test on a free port.

// prometheusBinary finds prometheus, or skips; scripts/test.sh installs it
// and sets PROBER_REQUIRE_PROMETHEUS=1, so in CI a missing one fails.
func prometheusBinary(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("PROBER_REQUIRE_PROMETHEUS") != "" {
			t.Fatal("prometheus not found; scripts/test.sh installs Debian's prometheus package")
		}
		t.Skip("prometheus not installed (apt-get install prometheus); scripts/test.sh installs it")
	}
	return p
}

type promServer struct {
	URL  string
	proc *proc
}

// startPrometheus scrapes targets (job name -> host:port list) every
// scrapeInterval, with exemplar storage on, and loads ruleFiles.
func startPrometheus(t *testing.T, targets map[string][]string, scrapeInterval time.Duration, ruleFiles ...string) *promServer {
	t.Helper()
	bin := prometheusBinary(t)
	dir := t.TempDir()
	var b strings.Builder
	fmt.Fprintf(&b, "global:\n  scrape_interval: %s\n  evaluation_interval: %s\n", scrapeInterval, scrapeInterval)
	if len(ruleFiles) > 0 {
		b.WriteString("rule_files:\n")
		for _, f := range ruleFiles {
			fmt.Fprintf(&b, "  - %q\n", f)
		}
	}
	b.WriteString("scrape_configs:\n")
	for job, addrs := range targets {
		fmt.Fprintf(&b, "  - job_name: %q\n    static_configs:\n      - targets: [%s]\n", job, quoteAll(addrs))
	}
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	p := &proc{cmd: exec.Command(bin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--enable-feature=exemplar-storage", "--web.enable-lifecycle",
		"--storage.tsdb.retention.time=1h", "--log.level=warn"),
		stdout: filepath.Join(dir, "stdout"), stderr: filepath.Join(dir, "stderr"), done: make(chan error, 1)}
	out, _ := os.Create(p.stdout)
	errf, _ := os.Create(p.stderr)
	p.cmd.Stdout, p.cmd.Stderr = out, errf
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait(); out.Close(); errf.Close() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("prometheus stderr:\n%s", read(t, p.stderr))
		}
	})
	ps := &promServer{URL: "http://" + addr, proc: p}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code, _ := get(t, ps.URL+"/-/ready"); code == 200 {
			return ps
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready:\n%s", read(t, p.stderr))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// promResult is an instant query's answer.
type promResult struct {
	Status string `json:"status"`
	Error  string `json:"error"`
	Data   struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	} `json:"data"`
}

// query runs an instant PromQL query.
func (ps *promServer) query(t *testing.T, q string) promResult {
	t.Helper()
	code, body := get(t, ps.URL+"/api/v1/query?query="+url.QueryEscape(q))
	var r promResult
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("query %q: HTTP %d: %s", q, code, body)
	}
	return r
}

// waitSeries waits until q returns at least one series.
func (ps *promServer) waitSeries(t *testing.T, q string, within time.Duration) promResult {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		r := ps.query(t, q)
		if r.Status == "success" && len(r.Data.Result) > 0 {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("no data for %q within %s (last: %+v)", q, within, r)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestMetricsThroughPrometheus: the demo's /metrics passes promtool's lint
// and a real Prometheus scrapes it, exemplars included.
func TestMetricsThroughPrometheus(t *testing.T) {
	prometheusBinary(t)
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found beside prometheus")
	}
	addr := freeAddr(t)
	start(t, []string{"SHOP_PASSWORD=" + secretPW}, "demo", "--browser=false", "--listen", addr, "--dir", t.TempDir(), "--every", "2s")
	base := "http://" + addr
	waitRun(t, base, "checkout", 60*time.Second, passed)

	_, body := get(t, base+"/metrics")
	lint := exec.Command(promtool, "check", "metrics")
	lint.Stdin = strings.NewReader(body)
	if out, err := lint.CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

	ps := startPrometheus(t, map[string][]string{"prober": {addr}}, time.Second)
	r := ps.waitSeries(t, `prober_runs_total{flow="checkout",result="success",region="local"}`, 30*time.Second)
	if r.Data.Result[0].Metric["job"] != "prober" {
		t.Errorf("series %v", r.Data.Result[0].Metric)
	}
	// Exemplars with trace ids reach Prometheus's exemplar storage.
	deadline := time.Now().Add(30 * time.Second)
	for {
		now := time.Now()
		_, ex := get(t, ps.URL+"/api/v1/query_exemplars?query="+url.QueryEscape(`prober_step_duration_seconds_bucket{flow="checkout"}`)+
			fmt.Sprintf("&start=%d&end=%d", now.Add(-5*time.Minute).Unix(), now.Unix()))
		if traceRE.MatchString(ex) && strings.Contains(ex, "trace_id") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no exemplar with a trace id in Prometheus: %s", ex)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
