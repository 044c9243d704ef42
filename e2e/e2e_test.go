// Package e2e runs the prober binary as a user would: real processes talking
// over loopback HTTP, checked through their outputs, logs and endpoints.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/result"
)

// binary is the prober built once for all tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "prober-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "prober")
	build := exec.Command("go", "build", "-race", "-o", binary, "../cmd/prober")
	if runtime.GOOS != "linux" || os.Getenv("E2E_NO_RACE") != "" {
		build = exec.Command("go", "build", "-o", binary, "../cmd/prober")
	}
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building prober:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a started prober process whose output is kept in files.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr string
	done           chan error
}

func start(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	dir := t.TempDir()
	p := &proc{
		cmd:    exec.Command(binary, args...),
		stdout: filepath.Join(dir, "stdout"),
		stderr: filepath.Join(dir, "stderr"),
		done:   make(chan error, 1),
	}
	out, _ := os.Create(p.stdout)
	errf, _ := os.Create(p.stderr)
	p.cmd.Stdout, p.cmd.Stderr = out, errf
	p.cmd.Env = append(os.Environ(), env...)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait(); out.Close(); errf.Close() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s stdout:\n%s\nstderr:\n%s", args[0], read(t, p.stdout), read(t, p.stderr))
		}
	})
	return p
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t *testing.T, within time.Duration) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(within):
		t.Fatalf("no exit within %s of SIGTERM", within)
	}
}

// runCmd runs the binary to completion and returns stdout, stderr, exit code.
func runCmd(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func get(t *testing.T, url string, header ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func do(t *testing.T, method, url, body string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%s %s: %d", method, url, resp.StatusCode)
	}
}

type results struct {
	Flows []struct {
		Name string        `json:"name"`
		Runs []*result.Run `json:"runs"`
	} `json:"flows"`
}

// waitRun polls the results API until a run of flow satisfies ok.
func waitRun(t *testing.T, base, flow string, within time.Duration, ok func(*result.Run) bool) *result.Run {
	t.Helper()
	deadline := time.Now().Add(within)
	var last string
	for time.Now().Before(deadline) {
		code, body := get(t, base+"/api/v1/results?flow="+flow+"&limit=20")
		last = body
		if code == 200 {
			var res results
			if err := json.Unmarshal([]byte(body), &res); err != nil {
				t.Fatalf("results API: %v: %s", err, body)
			}
			for _, f := range res.Flows {
				for _, r := range f.Runs {
					if ok(r) {
						return r
					}
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no matching %s run within %s; last response: %.2000s", flow, within, last)
	return nil
}

func passed(r *result.Run) bool { return r.OK() }

// logLines returns the JSON lines of a log file that mention s.
func logLines(t *testing.T, path, s string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if !strings.Contains(sc.Text(), s) {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: not JSON: %s", path, sc.Text())
		}
		out = append(out, m)
	}
	return out
}

const secretPW = "e2e-Secret-Value-7f3a9c"

// TestDemo is the first thing a new user does: run the demo, see a
// successful checkout on the status page, metrics and API, and find the
// probe's trace id in the shop's own logs.
func TestDemo(t *testing.T) {
	addr := freeAddr(t)
	dir := t.TempDir()
	p := start(t, []string{"SHOP_PASSWORD=" + secretPW}, "demo", "--listen", addr, "--dir", dir)
	base := "http://" + addr

	started := time.Now()
	r := waitRun(t, base, "checkout", 60*time.Second, passed)
	t.Logf("first successful checkout after %s", time.Since(started).Round(time.Millisecond))
	want := []string{"login", "create_order", "pay", "confirm", "cancel_order"}
	if len(r.Steps) != len(want) {
		t.Fatalf("steps %d, want %v", len(r.Steps), want)
	}
	spans := map[string]bool{}
	for i, s := range r.Steps {
		if s.Name != want[i] || s.Status != result.Passed {
			t.Fatalf("step %d: %s %s (%v)", i, s.Name, s.Status, s.Failures)
		}
		if spans[s.SpanID] {
			t.Fatalf("span id %s repeated", s.SpanID)
		}
		spans[s.SpanID] = true
	}

	// Every step reached the shop with the run's trace id and its own span id.
	lines := logLines(t, filepath.Join(dir, "shop.log"), r.TraceID)
	seen := map[string]bool{}
	for _, l := range lines {
		if l["trace_id"] != r.TraceID {
			t.Fatalf("line mentions the trace id but carries %v", l["trace_id"])
		}
		if l["service"] == "shop" && l["msg"] == "request" {
			seen[fmt.Sprint(l["span_id"])] = true
		}
	}
	for sp := range spans {
		if !seen[sp] {
			t.Errorf("span %s of trace %s not in the shop's log (%d lines for the trace)", sp, r.TraceID, len(lines))
		}
	}
	// The gateway, called by the shop, carries the same trace.
	gw := 0
	for _, l := range lines {
		if l["service"] == "gateway" {
			gw++
		}
	}
	if gw == 0 {
		t.Error("trace id not propagated to the gateway's log")
	}
	// The prober's own log has one line per step and per run, with the ids.
	plines := logLines(t, filepath.Join(dir, "prober.log"), r.TraceID)
	steps, runs := 0, 0
	for _, l := range plines {
		switch l["msg"] {
		case "step":
			steps++
			if !spans[fmt.Sprint(l["span_id"])] {
				t.Errorf("step log line with unknown span: %v", l)
			}
		case "run":
			runs++
		}
	}
	if steps != len(want) || runs != 1 {
		t.Errorf("prober log: %d step lines, %d run lines for the trace", steps, runs)
	}

	code, page := get(t, base+"/")
	if code != 200 || !strings.Contains(page, "checkout") || !strings.Contains(page, "PASSING") {
		t.Errorf("status page %d: %.500s", code, page)
	}
	code, om := get(t, base+"/metrics", "Accept", "application/openmetrics-text; version=1.0.0")
	if code != 200 || !regexp.MustCompile(`prober_step_duration_seconds_bucket\{.*flow="checkout".*\} \d+ # \{trace_id="[0-9a-f]{32}"\}`).MatchString(om) {
		t.Errorf("no exemplar with a trace id in OpenMetrics output")
	}
	if !strings.Contains(om, `prober_runs_total{flow="checkout",region="local",result="success"}`) {
		t.Errorf("runs counter missing:\n%.3000s", om)
	}
	if code, body := get(t, base+"/readyz"); code != 200 {
		t.Errorf("readyz %d %s", code, body)
	}

	// The banner tells the user where the shop and its fault switch are.
	shopURL := regexp.MustCompile(`sandbox shop\s+(http://127\.0\.0\.1:\d+)`).FindStringSubmatch(read(t, p.stdout))
	if shopURL == nil {
		t.Fatalf("no shop URL in the banner:\n%s", read(t, p.stdout))
	}

	p.stop(t, 20*time.Second)
	assertNoSecret(t, secretPW, read(t, p.stdout), read(t, p.stderr), read(t, filepath.Join(dir, "prober.log")),
		read(t, filepath.Join(dir, "shop.log")), page, om)
}

// TestOnceStory runs a flow from the command line against the shop in its
// own process: exit 0 when healthy; exit 1 with the story when the gateway
// fails and the shop swallows it.
func TestOnceStory(t *testing.T) {
	shopAddr := freeAddr(t)
	shopLog := filepath.Join(t.TempDir(), "shop.log")
	env := []string{"SHOP_PASSWORD=" + secretPW, "SHOP_URL=http://" + shopAddr}
	start(t, env, "shop", "--listen", shopAddr, "--log", shopLog)
	waitHTTP(t, "http://"+shopAddr+"/healthz")

	out, errOut, code := runCmd(t, env, "once", "--config", "../probes.yaml", "--flow", "checkout")
	if code != 0 {
		t.Fatalf("healthy once: exit %d\n%s\n%s", code, out, errOut)
	}
	do(t, "PUT", "http://"+shopAddr+"/admin/faults", `{"gateway_status":504,"swallow_errors":true}`)
	junit := filepath.Join(t.TempDir(), "junit.xml")
	out, errOut, code = runCmd(t, env, "once", "--config", "../probes.yaml", "--flow", "checkout", "--junit", junit)
	if code != 1 {
		t.Fatalf("swallowed error: exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"FAIL pay", `json.status == "success": got "processing"`, "class=swallowed_error",
		"checkout failed at step pay"} {
		if !strings.Contains(out, want) {
			t.Errorf("once output lacks %q:\n%s", want, out)
		}
	}
	m := regexp.MustCompile(`trace_id=([0-9a-f]{32})`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no trace id in:\n%s", out)
	}
	// The shop logged the swallowed gateway error under the same trace id.
	found := false
	for _, l := range logLines(t, shopLog, m[1]) {
		if l["msg"] == "gateway_error_swallowed" {
			found = true
		}
	}
	if !found {
		t.Errorf("the shop's swallowed-error log line for trace %s is missing", m[1])
	}
	j := read(t, junit)
	if !strings.Contains(j, `type="swallowed_error"`) || !strings.Contains(j, m[1]) {
		t.Errorf("junit:\n%s", j)
	}
	assertNoSecret(t, secretPW, out, errOut, j)
}

// TestValidate checks the shipped config and the three-errors-at-once promise.
func TestValidate(t *testing.T) {
	out, errOut, code := runCmd(t, nil, "validate", "--config", "../probes.yaml")
	if code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("shipped config: exit %d\n%s%s", code, out, errOut)
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "flows"), 0o755)
	os.WriteFile(filepath.Join(dir, "probes.yaml"), []byte("vars: {base: \"http://127.0.0.1:1\"}\nflows: [flows/bad.yaml]\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "flows", "bad.yaml"), []byte(`name: bad
every: 1x
steps:
  - name: login
    request: {url: "{{base}}/login"}
    expcet: [status == 200]
  - name: pay
    request: {url: "{{base}}/orders/{{order_id}}/pay"}
`), 0o644)
	out, errOut, code = runCmd(t, nil, "validate", "--config", filepath.Join(dir, "probes.yaml"))
	if code != 2 {
		t.Fatalf("bad config: exit %d, want 2\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		`flows/bad.yaml:2:8: expected a duration`,
		`flows/bad.yaml:6:5: unknown field "expcet" in step (did you mean "expect"?)`,
		`flows/bad.yaml:8:37: undefined variable "order_id"`,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("validate output lacks %q:\n%s", want, errOut)
		}
	}
}

// TestDaemonReloadRegionAndShutdown runs the daemon against the shop process:
// SIGHUP with a broken config keeps the old one; a regional fault hits only
// the prober in that region; SIGTERM exits cleanly.
func TestDaemonReloadRegionAndShutdown(t *testing.T) {
	shopAddr := freeAddr(t)
	env := []string{"SHOP_PASSWORD=" + secretPW, "SHOP_URL=http://" + shopAddr}
	start(t, env, "shop", "--listen", shopAddr, "--log", filepath.Join(t.TempDir(), "shop.log"))
	waitHTTP(t, "http://"+shopAddr+"/healthz")

	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "flows"), 0o755)
	for _, f := range []string{"flows/checkout.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), bytes.Replace(b, []byte("every: 60s"), []byte("every: 2s"), 1), 0o644)
	}
	good := `vars: {shop_url: "${env:SHOP_URL}", shop_user: synthetic-1}
secrets: {SHOP_PASSWORD: {env: SHOP_PASSWORD}}
flows: [flows/checkout.yaml]
`
	cfg := filepath.Join(dir, "probes.yaml")
	os.WriteFile(cfg, []byte(good), 0o644)
	addr := freeAddr(t)
	base := "http://" + addr
	p := start(t, env, "run", "--config", cfg, "--listen", addr, "--region", "eu-b")
	r := waitRun(t, base, "checkout", 30*time.Second, passed)
	if r.Region != "eu-b" {
		t.Fatalf("region %q", r.Region)
	}

	// A fault in another region does not touch this prober...
	do(t, "PUT", "http://"+shopAddr+"/admin/faults?region=eu-a", `{"gateway_status":504}`)
	after := time.Now()
	waitRun(t, base, "checkout", 20*time.Second, func(r *result.Run) bool { return r.Start.After(after) && r.OK() })
	// ...one in its own region does.
	do(t, "PUT", "http://"+shopAddr+"/admin/faults?region=eu-b", `{"gateway_status":504}`)
	after = time.Now()
	failed := waitRun(t, base, "checkout", 20*time.Second, func(r *result.Run) bool { return r.Start.After(after) && !r.OK() })
	if failed.FailedStep != "pay" || failed.Class != result.HTTP5xx {
		t.Fatalf("regional fault: %s", failed.Summary())
	}
	do(t, "DELETE", "http://"+shopAddr+"/admin/faults", "")

	// A broken config on SIGHUP is reported and the old one keeps running.
	os.WriteFile(cfg, []byte(good+"bogus: true\n"), 0o644)
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitMetric(t, base, `prober_config_last_reload_successful{region="eu-b"} 0`)
	after = time.Now()
	waitRun(t, base, "checkout", 20*time.Second, func(r *result.Run) bool { return r.Start.After(after) && r.OK() })
	if !strings.Contains(read(t, p.stdout), `"msg":"config_reload_failed"`) || !strings.Contains(read(t, p.stdout), `unknown field \"bogus\"`) {
		t.Errorf("reload failure not logged with its reason")
	}
	os.WriteFile(cfg, []byte(good), 0o644)
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitMetric(t, base, `prober_config_last_reload_successful{region="eu-b"} 1`)

	p.stop(t, 30*time.Second)
	if !strings.Contains(read(t, p.stdout), `"msg":"stopped"`) {
		t.Error("no clean stop logged")
	}
	assertNoSecret(t, secretPW, read(t, p.stdout), read(t, p.stderr))
}

func waitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if code, _ := get(t, url); code == 200 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not up", url)
}

func waitMetric(t *testing.T, base, line string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var body string
	for time.Now().Before(deadline) {
		_, body = get(t, base+"/metrics")
		if strings.Contains(body, line) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("metric %q not seen", line)
}

func assertNoSecret(t *testing.T, secret string, outputs ...string) {
	t.Helper()
	for i, o := range outputs {
		if strings.Contains(o, secret) {
			t.Errorf("output %d contains the secret", i)
		}
	}
}
