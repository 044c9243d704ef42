package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/schedule"
	"github.com/prober-dev/prober/internal/shop"
)

const (
	region   = "test-region"
	password = "pw-Zq8-daemon-test"
)

// ---- fixtures ----

// logBuf is a concurrency-safe log sink.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines decodes the JSON lines logged so far.
func (l *logBuf) lines(t testing.TB) []map[string]any {
	t.Helper()
	l.mu.Lock()
	data := bytes.Clone(l.b.Bytes())
	l.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, sc.Text())
		}
		out = append(out, m)
	}
	return out
}

// find returns the logged lines with msg and every key=value given.
func (l *logBuf) find(t testing.TB, msg string, kv ...string) []map[string]any {
	t.Helper()
	var out []map[string]any
lines:
	for _, m := range l.lines(t) {
		if m["msg"] != msg {
			continue
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if fmt.Sprint(m[kv[i]]) != kv[i+1] {
				continue lines
			}
		}
		out = append(out, m)
	}
	return out
}

// recorder is an Observer keeping every run.
type recorder struct {
	mu   sync.Mutex
	runs []*result.Run
}

func (r *recorder) Observe(run *result.Run) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.runs = append(r.runs, run)
}

func (r *recorder) of(flow string) []*result.Run {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*result.Run
	for _, run := range r.runs {
		if run.Flow == flow {
			out = append(out, run)
		}
	}
	return out
}

// slowTarget answers /slow after delay (or when the client gives up) and
// says when a request arrives.
type slowTarget struct {
	srv     *httptest.Server
	delay   atomic.Int64 // nanoseconds
	entered chan struct{}
}

func newSlowTarget(t *testing.T) *slowTarget {
	st := &slowTarget{entered: make(chan struct{}, 16)}
	st.delay.Store(int64(time.Second))
	st.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case st.entered <- struct{}{}:
		default:
		}
		tm := time.NewTimer(time.Duration(st.delay.Load()))
		defer tm.Stop()
		select {
		case <-tm.C:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`)
	}))
	t.Cleanup(st.srv.Close)
	return st
}

func (st *slowTarget) waitEntered(t *testing.T) {
	t.Helper()
	select {
	case <-st.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no request reached the slow target within 10s")
	}
}

const probesYAML = `region: ` + region + `
concurrency: 4
store: {keep: 50}
defaults: {every: 1s, timeout: 20s, step_timeout: 15s}
vars:
  shop_url: "${env:SHOP_URL}"
  shop_user: synthetic-1
  slow_url: "${env:SLOW_URL}"
secrets:
  SHOP_PASSWORD: {env: SHOP_PASSWORD}
flows:
%s`

func probes(flows ...string) string {
	var b strings.Builder
	for _, f := range flows {
		fmt.Fprintf(&b, "  - flows/%s.yaml\n", f)
	}
	return fmt.Sprintf(probesYAML, b.String())
}

// healthFlow hits the shop's health check.
func healthFlow(name string) string {
	return `name: ` + name + `
every: 1s
steps:
  - name: healthz
    request: {url: "{{shop_url}}/healthz"}
    expect: [status == 200, json.status == "ok"]
`
}

const slowFlow = `name: slow
every: 1s
timeout: 20s
steps:
  - name: wait
    request: {url: "{{slow_url}}/slow"}
    expect: [status == 200]
`

// checkoutFlow is the shipped checkout flow, run every second.
func checkoutFlow(t *testing.T) string {
	b, err := os.ReadFile(filepath.Join("..", "..", "flows", "checkout.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if !strings.Contains(s, "\nevery: 60s\n") {
		t.Fatalf("flows/checkout.yaml no longer has every: 60s; adjust the test")
	}
	return strings.Replace(s, "\nevery: 60s\n", "\nevery: 1s\n", 1)
}

type fixture struct {
	t        *testing.T
	dir      string
	sb       *shop.Sandbox
	slow     *slowTarget
	log      *logBuf
	rec      *recorder
	d        *Daemon
	base     string
	client   *http.Client
	baseline int

	cancel  context.CancelFunc
	done    chan error
	stopped bool
}

type fixtureOpts struct {
	files map[string]string // relative to the config directory
	grace time.Duration
	role  Role
	shard schedule.Shard
}

func newFixture(t *testing.T, o fixtureOpts) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: t.TempDir(), log: &logBuf{}, rec: &recorder{},
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
	runtime.GC()
	f.baseline = runtime.NumGoroutine()
	sb, err := shop.StartSandbox(context.Background(), shop.SandboxOptions{
		Password: password, SettleDelay: 50 * time.Millisecond, GatewayTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		sb.Close(ctx)
	})
	f.sb = sb
	f.slow = newSlowTarget(t)
	f.write(o.files)
	env := map[string]string{"SHOP_URL": sb.ShopURL, "SHOP_PASSWORD": password, "SLOW_URL": f.slow.srv.URL, "SHOP_TLS_ADDR": sb.TLSAddr}
	d, err := New(Options{
		ConfigFS:   os.DirFS(f.dir),
		ConfigPath: "probes.yaml",
		Load: config.Options{Env: func(k string) (string, bool) {
			v, ok := env[k]
			return v, ok
		}},
		Version:       "test",
		Logger:        slog.New(slog.NewJSONHandler(f.log, nil)),
		Observers:     []result.Observer{f.rec},
		ShutdownGrace: o.grace,
		Role:          o.role,
		Shard:         o.shard,
		StateDir:      filepath.Join(f.dir, "state"),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.d = d
	return f
}

func (f *fixture) write(files map[string]string) {
	f.t.Helper()
	for name, content := range files {
		p := filepath.Join(f.dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			f.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			f.t.Fatal(err)
		}
	}
}

// serve starts Serve on a loopback listener.
func (f *fixture) serve() {
	f.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.t.Fatal(err)
	}
	f.base = "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel, f.done = cancel, make(chan error, 1)
	go func() { f.done <- f.d.Serve(ctx, ln) }()
	f.t.Cleanup(func() {
		if !f.stopped {
			f.stop()
		}
	})
}

// stop cancels Serve's context and waits (bounded) for it to return.
func (f *fixture) stop() (time.Duration, error) {
	f.t.Helper()
	f.stopped = true
	start := time.Now()
	f.cancel()
	select {
	case err := <-f.done:
		return time.Since(start), err
	case <-time.After(30 * time.Second):
		f.t.Fatal("Serve did not return within 30s of its context being cancelled")
		return 0, nil
	}
}

func (f *fixture) get(path, accept string) (code int, ctype, body string) {
	f.t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.base+path, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		f.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

// metrics scrapes /metrics in the text format and returns its samples.
func (f *fixture) metrics() model.Vector {
	f.t.Helper()
	code, ctype, body := f.get("/metrics", "")
	if code != 200 {
		f.t.Fatalf("/metrics: %d\n%s", code, body)
	}
	dec := &expfmt.SampleDecoder{
		Dec:  expfmt.NewDecoder(strings.NewReader(body), expfmt.ResponseFormat(http.Header{"Content-Type": {ctype}})),
		Opts: &expfmt.DecodeOptions{Timestamp: model.Now()},
	}
	var all model.Vector
	for {
		var v model.Vector
		if err := dec.Decode(&v); err == io.EOF {
			break
		} else if err != nil {
			f.t.Fatalf("parsing /metrics: %v", err)
		}
		all = append(all, v...)
	}
	return all
}

// value returns the value of the sample with name and labels (besides region).
func value(v model.Vector, name string, kv ...string) (float64, bool) {
	want := model.LabelSet{model.MetricNameLabel: model.LabelValue(name), "region": region}
	for i := 0; i+1 < len(kv); i += 2 {
		want[model.LabelName(kv[i])] = model.LabelValue(kv[i+1])
	}
	for _, s := range v {
		if model.LabelSet(s.Metric).Equal(want) {
			return float64(s.Value), true
		}
	}
	return 0, false
}

// seriesOf lists the samples labelled flow=flow.
func seriesOf(v model.Vector, flow string) []string {
	var out []string
	for _, s := range v {
		if string(s.Metric["flow"]) == flow {
			out = append(out, s.Metric.String())
		}
	}
	return out
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkNoLeak checks that Serve left nothing running: first that no
// goroutine runs the daemon's code (scheduler, runner, cron, HTTP handlers),
// then, with the targets closed too (the shop keeps its own connections to
// its gateway), that the goroutine count is back to where it was before the
// fixture started.
func (f *fixture) checkNoLeak() {
	f.t.Helper()
	f.client.CloseIdleConnections()
	ours := regexp.MustCompile(`prober/internal/(daemon|schedule|runner|web|metrics|runlog|store)\.|robfig/cron`)
	settle(f.t, "daemon goroutines", func(stacks string) bool {
		for _, g := range strings.Split(stacks, "\n\n") {
			if ours.MatchString(g) && !strings.Contains(g, "(*fixture).checkNoLeak") && !strings.Contains(g, "testing.tRunner") {
				return false
			}
		}
		return true
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f.sb.Close(ctx)
	f.slow.srv.Close()
	settle(f.t, fmt.Sprintf("goroutine count back to %d", f.baseline), func(string) bool {
		return runtime.NumGoroutine() <= f.baseline
	})
}

// settle polls ok with the current goroutine stacks for up to 10s.
func settle(t *testing.T, what string, ok func(stacks string) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		if ok(stacks) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("leak: no %s 10s after Serve returned (%d goroutines):\n%s", what, runtime.NumGoroutine(), stacks)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var (
	traceRE    = regexp.MustCompile(`^[0-9a-f]{32}$`)
	exemplarRE = regexp.MustCompile(`_bucket\{[^}]*\} \S+ # \{trace_id="([0-9a-f]{32})"\}`)
)

// ---- tests ----

func TestServe(t *testing.T) {
	f := newFixture(t, fixtureOpts{files: map[string]string{
		"probes.yaml":         probes("checkout", "health"),
		"flows/checkout.yaml": checkoutFlow(t),
		"flows/health.yaml":   healthFlow("health"),
	}})
	f.serve()
	st := f.d.Store()
	waitFor(t, 15*time.Second, "a run of each flow in the store", func() bool {
		return st.Latest("checkout") != nil && st.Latest("health") != nil
	})
	for _, flow := range []string{"checkout", "health"} {
		r := st.Latest(flow)
		if !r.OK() || r.Region != region || !traceRE.MatchString(r.TraceID) {
			t.Errorf("%s: status %s region %q trace %q: %s", flow, r.Status, r.Region, r.TraceID, r.Summary())
		}
	}
	checkout := st.Latest("checkout")

	t.Run("observers", func(t *testing.T) {
		seen := map[string]bool{}
		for _, r := range f.rec.of("checkout") {
			seen[r.TraceID] = true
		}
		if !seen[checkout.TraceID] {
			t.Errorf("observer did not receive run %s", checkout.TraceID)
		}
		if len(f.rec.of("health")) == 0 {
			t.Errorf("observer received no health run")
		}
	})
	t.Run("log", func(t *testing.T) {
		if got := f.log.find(t, "run", "flow", "checkout", "trace_id", checkout.TraceID, "status", "passed"); len(got) != 1 {
			t.Errorf("%d run lines for %s, want 1", len(got), checkout.TraceID)
		}
		if got := f.log.find(t, "step", "flow", "checkout", "trace_id", checkout.TraceID); len(got) != len(checkout.Steps) {
			t.Errorf("%d step lines for %s, want %d", len(got), checkout.TraceID, len(checkout.Steps))
		}
		if got := f.log.find(t, "config_loaded", "flows", "2"); len(got) != 1 {
			t.Errorf("config_loaded logged %d times, want 1", len(got))
		}
	})

	tests := []struct {
		path, accept string
		code         int
		ctype        string
		body         []string
	}{
		{"/", "", 200, "text/html", []string{"checkout", "health", region}},
		{"/healthz", "", 200, "text/plain", []string{"ok"}},
		{"/readyz", "", 200, "text/plain", []string{"ready"}},
		{"/api/v1/flows", "", 200, "application/json", []string{`"name":"checkout"`, `"schedule":"every 1s"`}},
		{"/api/v1/results?flow=checkout", "", 200, "application/json", []string{`"region":"` + region + `"`}},
		{"/metrics", "", 200, "text/plain", []string{"prober_runs_total{", "go_goroutines", "prober_build_info{"}},
		{"/metrics", "application/openmetrics-text; version=1.0.0", 200, "application/openmetrics-text", []string{"# EOF", `# {trace_id="`}},
		{"/flows/checkout", "", 200, "text/html", []string{"pay"}},
		{"/runs/" + checkout.TraceID, "", 200, "text/html", []string{checkout.TraceID}},
		{"/nope", "", 404, "", nil},
	}
	for _, tc := range tests {
		t.Run("GET "+tc.path+" "+tc.accept, func(t *testing.T) {
			code, ctype, body := f.get(tc.path, tc.accept)
			if code != tc.code || !strings.HasPrefix(ctype, tc.ctype) {
				t.Fatalf("%d %s, want %d %s\n%s", code, ctype, tc.code, tc.ctype, body)
			}
			for _, s := range tc.body {
				if !strings.Contains(body, s) {
					t.Errorf("body lacks %q", s)
				}
			}
			if strings.Contains(body, password) {
				t.Errorf("body holds the shop password")
			}
		})
	}

	t.Run("results API", func(t *testing.T) {
		_, _, body := f.get("/api/v1/results?limit=5", "")
		var res struct {
			Region string `json:"region"`
			Flows  []struct {
				Name  string       `json:"name"`
				State string       `json:"state"`
				Runs  []result.Run `json:"runs"`
			} `json:"flows"`
		}
		if err := json.Unmarshal([]byte(body), &res); err != nil {
			t.Fatalf("%v\n%s", err, body)
		}
		if res.Region != region || len(res.Flows) != 2 {
			t.Fatalf("region %q, %d flows; want %q, 2", res.Region, len(res.Flows), region)
		}
		for _, fl := range res.Flows {
			if len(fl.Runs) == 0 || fl.State != "passing" {
				t.Errorf("flow %s: %d runs, state %q", fl.Name, len(fl.Runs), fl.State)
				continue
			}
			if r := fl.Runs[0]; !traceRE.MatchString(r.TraceID) || r.Flow != fl.Name || len(r.Steps) == 0 {
				t.Errorf("flow %s: run %+v", fl.Name, r)
			}
		}
	})

	t.Run("metrics", func(t *testing.T) {
		v := f.metrics()
		want := []struct {
			name string
			kv   []string
			min  float64
			max  float64
		}{
			{"prober_runs_total", []string{"flow", "checkout", "result", "success"}, 1, 1e9},
			{"prober_runs_total", []string{"flow", "health", "result", "success"}, 1, 1e9},
			{"prober_step_runs_total", []string{"flow", "checkout", "step", "pay", "class", "ok"}, 1, 1e9},
			{"prober_dependency_calls_total", []string{"flow", "checkout", "step", "pay", "dependency", "bank-gateway", "result", "success"}, 1, 1e9},
			{"prober_last_run_success", []string{"flow", "checkout"}, 1, 1},
			{"prober_flows_configured", nil, 2, 2},
			{"prober_config_reloads_total", []string{"result", "success"}, 1, 1},
			{"prober_config_reloads_total", []string{"result", "failure"}, 0, 0},
			{"prober_config_last_reload_successful", nil, 1, 1},
		}
		for _, w := range want {
			got, ok := value(v, w.name, w.kv...)
			if !ok || got < w.min || got > w.max {
				t.Errorf("%s%v = %v (found %v), want in [%v, %v]", w.name, w.kv, got, ok, w.min, w.max)
			}
		}
		// Exemplars name runs the store holds.
		_, _, om := f.get("/metrics", "application/openmetrics-text; version=1.0.0")
		kept := map[string]bool{}
		for _, flow := range []string{"checkout", "health"} {
			for _, r := range st.Recent(flow, 0) {
				kept[r.TraceID] = true
			}
		}
		ms := exemplarRE.FindAllStringSubmatch(om, -1)
		if len(ms) == 0 {
			t.Fatalf("no exemplars in\n%s", om)
		}
		for _, m := range ms {
			if !kept[m[1]] {
				t.Errorf("exemplar trace_id %s is not a run the prober made", m[1])
			}
		}
	})

	if _, err := f.stop(); err != nil {
		t.Errorf("Serve: %v", err)
	}
	if len(f.log.find(t, "stopped")) != 1 {
		t.Errorf("no stopped line logged")
	}
	f.checkNoLeak()
}

// New prepares; flows only start running when Serve does.
func TestNoRunsBeforeServe(t *testing.T) {
	f := newFixture(t, fixtureOpts{files: map[string]string{
		"probes.yaml":       probes("health"),
		"flows/health.yaml": healthFlow("health"),
	}})
	time.Sleep(300 * time.Millisecond)
	if n := len(f.rec.of("health")); n != 0 {
		t.Errorf("%d runs before Serve, want 0", n)
	}
	f.serve()
	waitFor(t, 10*time.Second, "a run after Serve", func() bool { return len(f.rec.of("health")) > 0 })
	f.stop()
	f.checkNoLeak()
}

func TestReload(t *testing.T) {
	base := map[string]string{
		"probes.yaml":         probes("health", "gone"),
		"flows/health.yaml":   healthFlow("health"),
		"flows/gone.yaml":     healthFlow("gone"),
		"flows/newcomer.yaml": healthFlow("newcomer"),
	}
	tests := []struct {
		name    string
		change  map[string]string
		wantErr []string // substrings of the config error; nil = success
		// flows expected after the reload (running), and removed ones (no series, no runs kept)
		running []string
		removed []string
	}{
		{
			name:    "misspelt field in a flow",
			change:  map[string]string{"flows/health.yaml": strings.Replace(healthFlow("health"), "expect:", "expcet:", 1)},
			wantErr: []string{"flows/health.yaml:6:", `unknown field "expcet"`},
			running: []string{"health", "gone"},
		},
		{
			name:    "probes.yaml is not YAML",
			change:  map[string]string{"probes.yaml": "region: [unclosed\n"},
			wantErr: []string{"probes.yaml:"},
			running: []string{"health", "gone"},
		},
		{
			name:    "flow file missing",
			change:  map[string]string{"probes.yaml": probes("health", "gone", "missing")},
			wantErr: []string{"flows/missing.yaml"},
			running: []string{"health", "gone"},
		},
		{
			name:    "a flow added, a flow removed",
			change:  map[string]string{"probes.yaml": probes("health", "newcomer")},
			running: []string{"health", "newcomer"},
			removed: []string{"gone"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, fixtureOpts{files: base})
			f.serve()
			waitFor(t, 10*time.Second, "first runs", func() bool {
				return len(f.rec.of("health")) > 0 && len(f.rec.of("gone")) > 0
			})
			before := f.d.Config()
			f.write(tc.change)
			reloaded := time.Now()
			err := f.d.Reload()
			v := f.metrics()
			if tc.wantErr != nil {
				var ce config.Errors
				if !errors.As(err, &ce) {
					t.Fatalf("Reload: %v (%T), want config.Errors", err, err)
				}
				for _, s := range tc.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q lacks %q", err, s)
					}
				}
				if f.d.Config() != before {
					t.Errorf("the configuration changed after a failed reload")
				}
				for name, want := range map[string]float64{"success": 1, "failure": 1} {
					if got, _ := value(v, "prober_config_reloads_total", "result", name); got != want {
						t.Errorf("prober_config_reloads_total{result=%q} = %v, want %v", name, got, want)
					}
				}
				if got, _ := value(v, "prober_config_last_reload_successful"); got != 0 {
					t.Errorf("prober_config_last_reload_successful = %v, want 0", got)
				}
				if len(f.log.find(t, "config_reload_failed")) != 1 {
					t.Errorf("config_reload_failed not logged once")
				}
			} else {
				if err != nil {
					t.Fatalf("Reload: %v", err)
				}
				if got, _ := value(v, "prober_config_reloads_total", "result", "success"); got != 2 {
					t.Errorf("prober_config_reloads_total{result=success} = %v, want 2", got)
				}
				if got, _ := value(v, "prober_config_last_reload_successful"); got != 1 {
					t.Errorf("prober_config_last_reload_successful = %v, want 1", got)
				}
				var names []string
				for _, fl := range f.d.Config().Flows {
					names = append(names, fl.Name)
				}
				if strings.Join(names, ",") != strings.Join(tc.running, ",") {
					t.Errorf("configured flows %v, want %v", names, tc.running)
				}
			}
			if got, _ := value(v, "prober_flows_configured"); got != float64(len(tc.running)) {
				t.Errorf("prober_flows_configured = %v, want %d", got, len(tc.running))
			}
			// Every flow that should run runs again after the reload.
			waitFor(t, 10*time.Second, fmt.Sprintf("runs of %v after the reload", tc.running), func() bool {
				for _, flow := range tc.running {
					runs := f.rec.of(flow)
					if len(runs) == 0 || runs[len(runs)-1].Start.Before(reloaded) {
						return false
					}
				}
				return true
			})
			// Wait out a run of a removed flow that may have been in
			// flight during the reload, then check it stayed removed.
			time.Sleep(300 * time.Millisecond)
			v = f.metrics()
			for _, flow := range tc.running {
				if got, _ := value(v, "prober_runs_total", "flow", flow, "result", "success"); got < 1 {
					t.Errorf("%s: prober_runs_total{success} = %v, want >= 1", flow, got)
				}
			}
			for _, flow := range tc.removed {
				if s := seriesOf(v, flow); len(s) > 0 {
					t.Errorf("removed flow %s still has %d series: %v", flow, len(s), s[:min(len(s), 5)])
				}
				if runs := f.d.Store().Recent(flow, 0); len(runs) > 0 {
					t.Errorf("removed flow %s still has %d runs in the store", flow, len(runs))
				}
				_, _, body := f.get("/api/v1/flows", "")
				if strings.Contains(body, `"name":"`+flow+`"`) {
					t.Errorf("/api/v1/flows still lists %s", flow)
				}
			}
			if _, err := f.stop(); err != nil {
				t.Errorf("Serve: %v", err)
			}
			f.checkNoLeak()
		})
	}
}

// A reload removes a flow while its run is in flight: the run finishes and
// is logged, but it does not bring the flow back into metrics or the store.
func TestReloadRemovesFlowWithRunInFlight(t *testing.T) {
	f := newFixture(t, fixtureOpts{files: map[string]string{
		"probes.yaml":       probes("health", "slow"),
		"flows/health.yaml": healthFlow("health"),
		"flows/slow.yaml":   slowFlow,
	}})
	f.slow.delay.Store(int64(700 * time.Millisecond))
	f.serve()
	f.slow.waitEntered(t)
	f.write(map[string]string{"probes.yaml": probes("health")})
	if err := f.d.Reload(); err != nil {
		t.Fatal(err)
	}
	if s := seriesOf(f.metrics(), "slow"); len(s) > 0 {
		t.Errorf("right after the reload, slow still has %d series: %v", len(s), s[:min(len(s), 5)])
	}
	waitFor(t, 10*time.Second, "the in-flight slow run to finish", func() bool { return len(f.rec.of("slow")) > 0 })
	r := f.rec.of("slow")[0]
	if len(f.log.find(t, "run", "flow", "slow", "trace_id", r.TraceID)) != 1 {
		t.Errorf("the in-flight run was not logged")
	}
	if s := seriesOf(f.metrics(), "slow"); len(s) > 0 {
		t.Errorf("the late run brought slow's %d series back: %v", len(s), s[:min(len(s), 5)])
	}
	if runs := f.d.Store().Recent("slow", 0); len(runs) > 0 {
		t.Errorf("the late run is in the store of a flow no longer configured")
	}
	time.Sleep(1200 * time.Millisecond) // a whole interval: slow is not scheduled again
	if n := len(f.rec.of("slow")); n != 1 {
		t.Errorf("%d slow runs, want 1 (removed flows stop)", n)
	}
	f.stop()
	f.checkNoLeak()
}

// Cancelling Serve's context (SIGTERM) lets the run in flight finish within
// the grace; a run stuck longer is cancelled when the grace ends. Either way
// the run is observed, logged and stored, and nothing is left running.
func TestShutdown(t *testing.T) {
	tests := []struct {
		name       string
		delay      time.Duration // of the slow target
		grace      time.Duration
		minServe   time.Duration // Serve takes at least this long to return after cancel
		maxServe   time.Duration
		wantStatus result.Status
		wantClass  result.Class
		wantMsg    string // in the run's summary
		wantLog    string // an extra event logged
	}{
		{
			name: "in-flight run finishes", delay: time.Second, grace: 10 * time.Second,
			minServe: 500 * time.Millisecond, maxServe: 8 * time.Second,
			wantStatus: result.Passed, wantClass: result.OK,
		},
		{
			name: "grace bounds a stuck run", delay: time.Minute, grace: 300 * time.Millisecond,
			minServe: 250 * time.Millisecond, maxServe: 8 * time.Second,
			wantStatus: result.Failed, wantClass: result.Timeout, wantMsg: "shutting down", wantLog: "shutdown_runs_cancelled",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, fixtureOpts{grace: tc.grace, files: map[string]string{
				"probes.yaml":     probes("slow"),
				"flows/slow.yaml": slowFlow,
			}})
			f.slow.delay.Store(int64(tc.delay))
			f.serve()
			f.slow.waitEntered(t)
			took, err := f.stop()
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
			if took < tc.minServe || took > tc.maxServe {
				t.Errorf("Serve returned %s after cancel, want within [%s, %s]", took, tc.minServe, tc.maxServe)
			}
			runs := f.rec.of("slow")
			if len(runs) != 1 {
				t.Fatalf("%d runs observed, want 1", len(runs))
			}
			r := runs[0]
			if r.Status != tc.wantStatus || r.Class != tc.wantClass {
				t.Errorf("run %s (%s), want %s (%s): %s", r.Status, r.Class, tc.wantStatus, tc.wantClass, r.Summary())
			}
			if !strings.Contains(r.Summary(), tc.wantMsg) {
				t.Errorf("summary %q lacks %q", r.Summary(), tc.wantMsg)
			}
			if got := f.d.Store().Latest("slow"); got == nil || got.TraceID != r.TraceID {
				t.Errorf("the run is not in the store")
			}
			if len(f.log.find(t, "run", "flow", "slow", "trace_id", r.TraceID, "status", string(tc.wantStatus))) != 1 {
				t.Errorf("the run was not logged")
			}
			if tc.wantLog != "" && len(f.log.find(t, tc.wantLog)) == 0 {
				t.Errorf("%s not logged", tc.wantLog)
			}
			// The log ends with the shutdown, after the run.
			lines := f.log.lines(t)
			if last := lines[len(lines)-1]; last["msg"] != "stopped" {
				t.Errorf("last log line %v, want stopped", last["msg"])
			}
			f.checkNoLeak()
		})
	}
}

func TestNewBadConfig(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"no probes.yaml", map[string]string{}, []string{"probes.yaml"}},
		{"bad duration and undefined variable", map[string]string{
			"probes.yaml": probes("health"),
			"flows/health.yaml": `name: health
every: soon
steps:
  - name: healthz
    request: {url: "{{shop_urll}}/healthz"}
`,
		}, []string{"flows/health.yaml:2:8:", "flows/health.yaml:5:", "shop_urll"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tc.files {
				p := filepath.Join(dir, name)
				os.MkdirAll(filepath.Dir(p), 0o755)
				os.WriteFile(p, []byte(content), 0o644)
			}
			before := runtime.NumGoroutine()
			d, err := New(Options{ConfigFS: os.DirFS(dir), ConfigPath: "probes.yaml",
				Load: config.Options{Env: func(string) (string, bool) { return "x", true }}})
			if err == nil || d != nil {
				t.Fatalf("New = %v, %v; want an error", d, err)
			}
			var ce config.Errors
			if !errors.As(err, &ce) {
				t.Errorf("error %T, want config.Errors", err)
			}
			for _, s := range tc.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error lacks %q:\n%v", s, err)
				}
			}
			if n := runtime.NumGoroutine(); n > before {
				t.Errorf("a failed New left %d goroutines", n-before)
			}
		})
	}
}

func TestDescribeSchedule(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip(err)
	}
	tests := []struct {
		in   config.Schedule
		want string
	}{
		{config.Schedule{Every: time.Minute}, "every 1m0s"},
		{config.Schedule{Every: 1500 * time.Millisecond}, "every 1.5s"},
		{config.Schedule{Cron: "*/5 * * * *"}, "cron */5 * * * * (UTC)"},
		{config.Schedule{Cron: "@hourly", Location: ny}, "cron @hourly (America/New_York)"},
	}
	for _, tc := range tests {
		if got := DescribeSchedule(tc.in); got != tc.want {
			t.Errorf("DescribeSchedule(%+v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// A reload of a broken configuration shows on every page as a banner and in
// /readyz as a note of a 200 answer (the prober still runs the previous
// configuration, as when it is behind); the next good reload clears both.
func TestFailedReloadIsVisible(t *testing.T) {
	f := newFixture(t, fixtureOpts{files: map[string]string{
		"probes.yaml":       probes("health"),
		"flows/health.yaml": healthFlow("health"),
	}})
	f.serve()
	if code, _, body := f.get("/readyz", ""); code != 200 || body != "ready" {
		t.Fatalf("/readyz before = %d %q", code, body)
	}
	f.write(map[string]string{"flows/health.yaml": "name: health\nevery: 1s\nsteps: [}\n"})
	if err := f.d.Reload(); err == nil {
		t.Fatal("the broken configuration reloaded")
	}
	code, _, body := f.get("/readyz", "")
	if code != 200 || !strings.HasPrefix(body, "ready, configuration reload failed at ") ||
		!strings.Contains(body, "flows/health.yaml") || !strings.HasSuffix(body, "; running the previous configuration") {
		t.Errorf("/readyz after a failed reload = %d %q", code, body)
	}
	for _, path := range []string{"/", "/flows/health", "/alerts"} {
		_, _, page := f.get(path, "")
		i := strings.Index(page, `<p class="banner" role="alert">configuration reload failed at `)
		if i < 0 || !strings.Contains(page[i:], "running the previous configuration</p>") {
			t.Errorf("%s has no reload banner", path)
		}
	}
	f.write(map[string]string{"flows/health.yaml": healthFlow("health")})
	if err := f.d.Reload(); err != nil {
		t.Fatal(err)
	}
	if code, _, body := f.get("/readyz", ""); code != 200 || body != "ready" {
		t.Errorf("/readyz after a good reload = %d %q", code, body)
	}
	if _, _, page := f.get("/", ""); strings.Contains(page, `class="banner"`) {
		t.Error("the banner outlived a good reload")
	}
	f.stop()
}
