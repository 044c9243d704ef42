package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The 2 AM incident as one trace in a real Jaeger: the demo's checkout
// runs with the bank gateway broken and the shop swallowing it; the page's
// trace link opens, through Jaeger's query API, one trace holding the
// prober's run, step and attempt spans, the shop's /pay server span under
// the pay step, its gateway call under that and the gateway's own span
// under the call, with the failed step and the gateway call in error.

const jaegerVersion = "v1.75.0"

// jaegerBin is the Jaeger all-in-one binary: $PROBER_JAEGER_BIN, else the
// one scripts/test.sh caches. Absent, the test skips, unless
// PROBER_REQUIRE_JAEGER=1 (CI) makes that a failure.
func jaegerBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("PROBER_JAEGER_BIN")
	if bin == "" {
		if cache, err := os.UserCacheDir(); err == nil {
			bin = filepath.Join(cache, "prober-tools", "jaeger-"+jaegerVersion)
		}
	}
	if st, err := os.Stat(bin); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
		return bin
	}
	msg := fmt.Sprintf("no Jaeger %s binary (looked at %q): scripts/test.sh builds it from the Go module proxy, or set PROBER_JAEGER_BIN", jaegerVersion, bin)
	if os.Getenv("PROBER_REQUIRE_JAEGER") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// jaegerEnv is a running Jaeger v2 on loopback with in-memory storage.
type jaegerEnv struct {
	otlpHTTP string // base URL of the OTLP/HTTP receiver
	query    string // base URL of the query API and UI
}

func startJaeger(t *testing.T) *jaegerEnv {
	t.Helper()
	bin := jaegerBin(t)
	dir := t.TempDir()
	otlp, query, queryGRPC, health := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	// Only what the test needs, all on loopback: the OTLP/HTTP receiver,
	// memory storage, the query API; the collector's own metrics off (its
	// default would listen on :8888).
	cfg := fmt.Sprintf(`service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics: {level: none}
    logs: {level: warn}
extensions:
  healthcheckv2:
    use_v2: true
    http: {endpoint: %q}
  jaeger_query:
    storage: {traces: memstore}
    http: {endpoint: %q}
    grpc: {endpoint: %q}
  jaeger_storage:
    backends:
      memstore: {memory: {max_traces: 10000}}
receivers:
  otlp:
    protocols:
      http: {endpoint: %q}
processors:
  batch: {timeout: 100ms}
exporters:
  jaeger_storage_exporter: {trace_storage: memstore}
`, health, query, queryGRPC, otlp)
	path := filepath.Join(dir, "jaeger.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "jaeger.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", path)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting Jaeger: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("jaeger log:\n%s", read(t, logf.Name()))
		}
	})
	j := &jaegerEnv{otlpHTTP: "http://" + otlp, query: "http://" + query}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-done:
			t.Fatalf("Jaeger exited at start:\n%s", read(t, logf.Name()))
		default:
		}
		if resp, err := http.Get(j.query + "/api/services"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return j
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Jaeger's query API not up within 60s:\n%s", read(t, logf.Name()))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// jaegerTrace is the part of Jaeger's /api/traces/{id} answer we check.
type jaegerTrace struct {
	TraceID string       `json:"traceID"`
	Spans   []jaegerSpan `json:"spans"`
	// Processes maps a span's processID to its service.
	Processes map[string]struct {
		ServiceName string `json:"serviceName"`
	} `json:"processes"`
}

type jaegerSpan struct {
	TraceID       string `json:"traceID"`
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []struct {
		RefType string `json:"refType"`
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	ProcessID string     `json:"processID"`
	Tags      []jaegerKV `json:"tags"`
	Logs      []struct {
		Fields []jaegerKV `json:"fields"`
	} `json:"logs"`
	service string
}

type jaegerKV struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
}

func (s *jaegerSpan) tag(key string) string {
	for _, kv := range s.Tags {
		if kv.Key == key {
			return fmt.Sprint(kv.Value)
		}
	}
	return ""
}

func (s *jaegerSpan) parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

func (s *jaegerSpan) String() string {
	return fmt.Sprintf("%s %q (%s, parent %s)", s.service, s.OperationName, s.SpanID, s.parent())
}

// getTraces asks Jaeger for trace id: the traces of its answer.
func (j *jaegerEnv) getTraces(t *testing.T, id string) []jaegerTrace {
	t.Helper()
	code, body := get(t, j.query+"/api/traces/"+id)
	if code == http.StatusNotFound {
		return nil
	}
	if code != 200 {
		t.Fatalf("jaeger /api/traces/%s: %d %s", id, code, body)
	}
	var out struct {
		Data []jaegerTrace `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("jaeger /api/traces/%s: %v: %s", id, err, body)
	}
	for i := range out.Data {
		tr := &out.Data[i]
		for k := range tr.Spans {
			tr.Spans[k].service = tr.Processes[tr.Spans[k].ProcessID].ServiceName
		}
	}
	return out.Data
}

// incidentSpans are the spans of the incident trace the test asserts on.
type incidentSpans struct {
	root, pay, shopPay, gwCall, gateway *jaegerSpan
	steps                               map[string]*jaegerSpan
	byID                                map[string]*jaegerSpan
}

// find picks the incident's spans out of trace tr (nil fields: not there yet).
func findIncident(tr *jaegerTrace) incidentSpans {
	in := incidentSpans{steps: map[string]*jaegerSpan{}, byID: map[string]*jaegerSpan{}}
	for i := range tr.Spans {
		in.byID[tr.Spans[i].SpanID] = &tr.Spans[i]
	}
	for i := range tr.Spans {
		s := &tr.Spans[i]
		switch {
		case s.service == "prober" && s.parent() == "" && s.OperationName == "checkout":
			in.root = s
		case s.service == "sandbox-shop" && s.OperationName == "POST /api/orders/{id}/pay":
			in.shopPay = s
		case s.service == "sandbox-shop" && s.tag("span.kind") == "client":
			in.gwCall = s
		case s.service == "sandbox-gateway" && s.OperationName == "POST /v1/charges":
			in.gateway = s
		}
	}
	if in.root != nil {
		for i := range tr.Spans {
			s := &tr.Spans[i]
			if s.service == "prober" && s.parent() == in.root.SpanID {
				in.steps[s.OperationName] = s
			}
		}
		in.pay = in.steps["pay"]
	}
	return in
}

func (in incidentSpans) complete() bool {
	return in.root != nil && in.pay != nil && in.shopPay != nil && in.gwCall != nil && in.gateway != nil &&
		in.steps["login"] != nil && in.steps["create_order"] != nil && in.steps["cancel_order"] != nil
}

// tree renders the spans under s, one a line, indented by depth.
func tree(tr *jaegerTrace, s *jaegerSpan, depth int) string {
	line := fmt.Sprintf("%s%-*s %-16s", strings.Repeat("  ", depth), 40-2*depth, s.OperationName, s.service)
	if code := s.tag("http.response.status_code"); code != "" {
		line += " " + code
	}
	if s.tag("error") == "true" {
		line += " ERROR " + s.tag("error.type")
	}
	out := line + "\n"
	for i := range tr.Spans {
		if c := &tr.Spans[i]; c.parent() == s.SpanID {
			out += tree(tr, c, depth+1)
		}
	}
	return out
}

var traceLinkRE = regexp.MustCompile(`trace: (http://127\.0\.0\.1:\d+)/trace/([0-9a-f]{32})`)

func TestTracingIncidentInJaeger(t *testing.T) {
	j := startJaeger(t)

	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "flows"), 0o755); err != nil {
		t.Fatal(err)
	}
	flow, err := os.ReadFile("../flows/checkout.yaml")
	if err != nil {
		t.Fatal(err)
	}
	flow = []byte(strings.Replace(string(flow), "every: 60s", "every: 2s", 1))
	if err := os.WriteFile(filepath.Join(dir, "flows", "checkout.yaml"), flow, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "probes.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`vars: {shop_url: "${env:SHOP_URL}", shop_user: synthetic-1}
secrets:
  SHOP_PASSWORD: {env: SHOP_PASSWORD}
flows: [flows/checkout.yaml]
tracing:
  endpoint: %s
  protocol: http
notifiers:
  console: {type: console}
alerting:
  state_dir: %q
  evaluation_interval: 1s
  routes: {critical: [console]}
  links: {trace: "%s/trace/{trace_id}"}
rules:
  - name: checkout_failing
    flow_failing: {flows: [checkout]}
    for: 2s
    severity: critical
`, j.otlpHTTP, filepath.Join(dir, "state"), j.query)), 0o644); err != nil {
		t.Fatal(err)
	}

	addr, shopAddr := freeAddr(t), freeAddr(t)
	p := start(t, []string{"SHOP_PASSWORD=" + secretPW}, "demo", "--config", cfg, "--listen", addr,
		"--shop-listen", shopAddr, "--dir", filepath.Join(dir, "demo"))
	base := "http://" + addr
	waitRun(t, base, "checkout", 60*time.Second, passed)

	// 02:14: the gateway answers 504 and the shop swallows it.
	do(t, "PUT", "http://"+shopAddr+"/admin/faults", `{"gateway_status":504,"swallow_errors":true}`)

	// The page names a trace; its trace link is the way in.
	var traceID string
	eventually(t, 40*time.Second, "a page with a trace link", func() bool {
		out := read(t, p.stdout)
		i := strings.Index(out, "PAGE trigger critical [checkout_failing]")
		if i < 0 {
			return false
		}
		m := traceLinkRE.FindStringSubmatch(out[i:])
		if m == nil {
			return false
		}
		if m[1] != j.query {
			t.Fatalf("trace link to %s, want Jaeger at %s", m[1], j.query)
		}
		traceID = m[2]
		return true
	})
	t.Logf("paged with trace %s", traceID)

	// Spans arrive in batches (the prober's, the shop's and the gateway's,
	// each within a couple of seconds): wait for the whole incident.
	var traces []jaegerTrace
	var in incidentSpans
	deadline := time.Now().Add(30 * time.Second)
	for {
		traces = j.getTraces(t, traceID)
		if len(traces) == 1 {
			if in = findIncident(&traces[0]); in.complete() {
				break
			}
		}
		if time.Now().After(deadline) {
			var have []string
			for _, tr := range traces {
				for i := range tr.Spans {
					have = append(have, tr.Spans[i].String())
				}
			}
			t.Fatalf("trace %s within 30s: %d traces, spans:\n%s", traceID, len(traces), strings.Join(have, "\n"))
		}
		time.Sleep(250 * time.Millisecond)
	}
	tr := traces[0]
	t.Logf("trace %s:\n%s", traceID, tree(&tr, in.root, 0))
	if tr.TraceID != traceID {
		t.Fatalf("Jaeger answered trace %s for %s", tr.TraceID, traceID)
	}
	for i := range tr.Spans {
		if s := &tr.Spans[i]; s.TraceID != traceID {
			t.Errorf("span %s in trace %s", s, s.TraceID)
		}
	}

	// The run: the root, in error with the swallowed-error class.
	if in.root.tag("prober.run_id") != in.root.SpanID || in.root.tag("error") != "true" ||
		in.root.tag("error.type") != "swallowed_error" || in.root.tag("prober.failed_step") != "pay" {
		t.Errorf("run span %s tags %v", in.root, in.root.Tags)
	}
	// The steps: children of the run; pay in error, the others not.
	for name, s := range in.steps {
		wantErr := name == "pay"
		if got := s.tag("error") == "true"; got != wantErr {
			t.Errorf("step span %s: error %v, want %v (tags %v)", s, got, wantErr, s.Tags)
		}
	}
	if in.pay.tag("error.type") != "swallowed_error" || in.pay.tag("http.response.status_code") != "200" || in.pay.tag("span.kind") != "client" {
		t.Errorf("pay step span tags %v", in.pay.Tags)
	}
	// Each step made one attempt (no retry, no poll): one attempt span under
	// it, a client span named by the method, with the step's status code.
	for name, method := range map[string]string{"login": "POST", "create_order": "POST", "pay": "POST", "cancel_order": "DELETE"} {
		step := in.steps[name]
		var attempts []*jaegerSpan
		for i := range tr.Spans {
			if c := &tr.Spans[i]; c.parent() == step.SpanID && c.service == "prober" {
				attempts = append(attempts, c)
			}
		}
		if len(attempts) != 1 {
			t.Errorf("step %s: %d attempt spans, want 1: %v", name, len(attempts), attempts)
			continue
		}
		a := attempts[0]
		if a.OperationName != method || a.tag("span.kind") != "client" || a.tag("prober.attempt") != "1" ||
			a.tag("http.response.status_code") != step.tag("http.response.status_code") || a.tag("error") == "true" {
			t.Errorf("step %s: attempt span %s tags %v", name, a, a.Tags)
		}
	}
	// The shop's /pay under the pay step; its gateway call under it; the
	// gateway's own span under the call.
	if in.shopPay.parent() != in.pay.SpanID {
		t.Errorf("shop /pay span %s: parent %s, want the pay step %s", in.shopPay, in.shopPay.parent(), in.pay.SpanID)
	}
	if in.gwCall.parent() != in.shopPay.SpanID {
		t.Errorf("gateway call %s: parent %s, want the shop's /pay %s", in.gwCall, in.gwCall.parent(), in.shopPay.SpanID)
	}
	if in.gateway.parent() != in.gwCall.SpanID {
		t.Errorf("gateway span %s: parent %s, want the call %s", in.gateway, in.gateway.parent(), in.gwCall.SpanID)
	}
	// The 504 and the swallow.
	if in.gwCall.tag("error") != "true" || in.gwCall.tag("http.response.status_code") != "504" {
		t.Errorf("gateway call tags %v", in.gwCall.Tags)
	}
	if in.gateway.tag("error") != "true" || in.gateway.tag("http.response.status_code") != "504" {
		t.Errorf("gateway span tags %v", in.gateway.Tags)
	}
	if in.shopPay.tag("http.response.status_code") != "200" || in.shopPay.tag("shop.gateway.error_swallowed") != "true" {
		t.Errorf("shop /pay span tags %v", in.shopPay.Tags)
	}
	swallow := false
	for _, l := range in.shopPay.Logs {
		s := &jaegerSpan{Tags: l.Fields}
		if s.tag("event") == "exception" && s.tag("exception.type") == "shop.GatewayErrorSwallowed" &&
			strings.Contains(s.tag("exception.message"), "504") {
			swallow = true
		}
	}
	if !swallow {
		t.Errorf("no swallowed-504 exception on the shop's /pay span: %+v", in.shopPay.Logs)
	}
	// Every span's parent is in the trace: one tree, no orphans.
	for i := range tr.Spans {
		s := &tr.Spans[i]
		if par := s.parent(); par != "" && in.byID[par] == nil {
			t.Errorf("span %s: parent %s not in the trace", s, par)
		}
	}
	p.stop(t, 30*time.Second)
}
