package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/shop"
)

// password is distinctive so that any leak of it is found by a plain search.
const password = "Pw-7hX2-ShouldNeverBeSeen-91"

// repoProbes is the probes.yaml that ships, found from this test file.
func repoProbes(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("runtime.Caller failed")
	}
	p := filepath.Join(filepath.Dir(file), "..", "..", "probes.yaml")
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// invoke runs the CLI in-process and returns its exit code and output.
func invoke(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const goodProbes = `region: eu-west-1
vars:
  shop_url: "${env:SHOP_URL:-http://127.0.0.1:8080}"
secrets:
  SHOP_PASSWORD: {env: SHOP_PASSWORD}
flows:
  - flows/checkout.yaml
`

const goodFlow = `name: checkout
every: 1m
steps:
  - name: login
    request:
      method: POST
      url: "{{shop_url}}/api/login"
      json: {user: synthetic-1, password: "{{secret:SHOP_PASSWORD}}"}
    expect: [status == 200, json.token != ""]
    capture: {token: json.token}
  - name: orders
    request:
      url: "{{shop_url}}/api/orders/1"
      headers: {Authorization: "Bearer {{token}}"}
`

// badFlow has a bad duration (line 2), a misspelt field (line 9) and an
// undefined variable (line 13).
const badFlow = `name: checkout
every: 1minute
steps:
  - name: login
    request:
      method: POST
      url: "{{shop_url}}/api/login"
      json: {user: synthetic-1, password: "{{secret:SHOP_PASSWORD}}"}
    expcet: [status == 200]
    capture: {token: json.token}
  - name: orders
    request:
      url: "{{shop_url}}/api/orders/{{order_idd}}"
      headers: {Authorization: "Bearer {{token}}"}
`

func TestCommands(t *testing.T) {
	t.Setenv("SHOP_PASSWORD", password)
	good := writeFiles(t, map[string]string{"probes.yaml": goodProbes, "flows/checkout.yaml": goodFlow})
	bad := writeFiles(t, map[string]string{"probes.yaml": goodProbes, "flows/checkout.yaml": badFlow})
	repo := repoProbes(t)

	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     []string // substrings
		stderr     []string
		stderrRE   []string // regexps, multi-line mode
		noStdout   bool
		stderrNone bool
		once       []string // in stderr exactly once
		absent     []string // in neither output
	}{
		{name: "version", args: []string{"version"}, code: 0, stdout: []string{"prober "}, stderrNone: true},
		{name: "help", args: []string{"help"}, code: 0, stdout: []string{"Usage:", "prober once"}},
		{name: "unknown command", args: []string{"nope"}, code: 2, stderr: []string{`unknown command "nope"`, "Usage:"}, noStdout: true},
		{name: "unknown flag", args: []string{"validate", "--nope"}, code: 2, stderr: []string{"prober validate -h"},
			once: []string{"flag provided but not defined: -nope"}, absent: []string{"Usage"}, noStdout: true},
		{name: "-h", args: []string{"-h"}, code: 0, stdout: []string{"Usage:", "prober once", "prober init"}, absent: []string{"Usage of"}},
		{name: "--help", args: []string{"--help"}, code: 0, stdout: []string{"Usage:", "prober validate"}, absent: []string{"Usage of"}},
		{name: "-help", args: []string{"-help"}, code: 0, stdout: []string{"Usage:", "prober demo"}, absent: []string{"Usage of"}},
		{name: "once -h", args: []string{"once", "-h"}, code: 0, stderr: []string{"Usage: prober once [flags]", "-junit"}, absent: []string{"Usage of"}},
		{name: "run bad flag value", args: []string{"run", "--listen"}, code: 2, once: []string{"flag needs an argument: -listen"}},
		{name: "validate -h", args: []string{"validate", "-h"}, code: 0, stderr: []string{"-config"}},
		{name: "unexpected argument", args: []string{"validate", "--config", filepath.Join(good, "probes.yaml"), "extra"}, code: 2,
			stderr: []string{"unexpected arguments: extra"}},
		{name: "config not found", args: []string{"validate", "--config", filepath.Join(good, "nope.yaml")}, code: 2,
			stderr: []string{"nope.yaml"}},
		{name: "validate good", args: []string{"validate", "--config", filepath.Join(good, "probes.yaml")}, code: 0,
			stdout: []string{"probes.yaml: ok: 1 flow(s), 2 step(s)", "checkout", "every 1m0s", "flows/checkout.yaml"}, stderrNone: true},
		{name: "validate good, secrets resolved", args: []string{"validate", "--secrets", "--config", filepath.Join(good, "probes.yaml")}, code: 0,
			stdout: []string{"ok", "secrets resolved"}},
		{name: "validate shipped config", args: []string{"validate", "--config", repo}, code: 0,
			stdout: []string{"ok: 3 flow(s)", "checkout", "shop_health", "shop_certificate"}},
		{name: "validate bad", args: []string{"validate", "--config", filepath.Join(bad, "probes.yaml")}, code: 2,
			stderrRE: []string{
				`(?m)^flows/checkout\.yaml:2:8: .*duration.*"1minute"$`,
				`(?m)^flows/checkout\.yaml:9:5: unknown field "expcet".*$`,
				`(?m)^flows/checkout\.yaml:13:\d+: undefined variable "order_idd"$`,
				`(?m)^prober: 3 configuration error\(s\)$`,
			}, noStdout: true},
		{name: "validate bad, secrets resolved", args: []string{"validate", "--secrets", "--config", filepath.Join(bad, "probes.yaml")}, code: 2,
			stderr: []string{`unknown field "expcet"`}},
		{name: "once bad config", args: []string{"once", "--config", filepath.Join(bad, "probes.yaml")}, code: 2,
			stderr: []string{"3 configuration error(s)"}, noStdout: true},
		{name: "demo every below 1s", args: []string{"demo", "--every", "500ms"}, code: 2, stderr: []string{"minimum is 1s"}},
		{name: "run bad log level", args: []string{"run", "--log-level", "loud", "--config", filepath.Join(good, "probes.yaml")}, code: 2,
			stderr: []string{"--log-level"}},
		{name: "run bad config", args: []string{"run", "--config", filepath.Join(bad, "probes.yaml")}, code: 2,
			stderr: []string{"3 configuration error(s)"}},
		{name: "run bad shard", args: []string{"run", "--role", "probe", "--shard", "3/3", "--config", filepath.Join(good, "probes.yaml")}, code: 2,
			stderr: []string{"--shard", "from 0 to 2"}, noStdout: true},
		{name: "run shard without role probe", args: []string{"run", "--shard", "0/2", "--config", filepath.Join(good, "probes.yaml")}, code: 2,
			stderr: []string{"--shard 0/2 needs --role probe"}, noStdout: true},
		{name: "run -h", args: []string{"run", "-h"}, code: 0, stderr: []string{"-memory-limit-ratio", "(default 0.9)", "GOMEMLIMIT"}},
		{name: "run memory limit ratio above 1", args: []string{"run", "--memory-limit-ratio", "1.5", "--config", filepath.Join(good, "probes.yaml")}, code: 2,
			stderr: []string{`invalid value "1.5" for flag -memory-limit-ratio: want a number from 0 to 1`}, noStdout: true},
		{name: "demo memory limit ratio not a number", args: []string{"demo", "--memory-limit-ratio", "NaN"}, code: 2,
			stderr: []string{"-memory-limit-ratio"}, noStdout: true},
		{name: "once unknown flow", args: []string{"once", "--config", repo, "--flow", "nope"}, code: 2,
			stderr: []string{`no flow "nope"`, "checkout", "shop_health"}, noStdout: true},
		{name: "once one unknown flow among known", args: []string{"once", "--config", repo, "--flow", "checkout,nope"}, code: 2,
			stderr: []string{`no flow "nope"`}, noStdout: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := invoke(tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout, stderr)
			}
			for _, s := range tc.stdout {
				if !strings.Contains(stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout)
				}
			}
			for _, s := range tc.stderr {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr)
				}
			}
			for _, re := range tc.stderrRE {
				if !regexp.MustCompile(re).MatchString(stderr) {
					t.Errorf("stderr does not match %s:\n%s", re, stderr)
				}
			}
			if tc.noStdout && stdout != "" {
				t.Errorf("stdout not empty:\n%s", stdout)
			}
			if tc.stderrNone && stderr != "" {
				t.Errorf("stderr not empty:\n%s", stderr)
			}
			for _, s := range tc.once {
				if n := strings.Count(stderr, s); n != 1 {
					t.Errorf("stderr holds %q %d times, want once:\n%s", s, n, stderr)
				}
			}
			for _, s := range tc.absent {
				if strings.Contains(stdout+stderr, s) {
					t.Errorf("output holds %q:\nstdout:\n%s\nstderr:\n%s", s, stdout, stderr)
				}
			}
			if strings.Contains(stdout+stderr, password) {
				t.Errorf("output holds the password:\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
			}
		})
	}
}

// run sets the memory limit before it loads the configuration, and a
// GOMEMLIMIT in the environment is left to the runtime. (Setting it here
// changes nothing: the runtime reads it at start.)
func TestRunMemoryLimit(t *testing.T) {
	t.Setenv("SHOP_PASSWORD", password)
	t.Setenv("GOMEMLIMIT", "3GiB")
	bad := writeFiles(t, map[string]string{"probes.yaml": goodProbes, "flows/checkout.yaml": badFlow})
	tests := []struct {
		ratio string
		want  bool
	}{{"0.9", true}, {"0", false}}
	for _, tc := range tests {
		t.Run(tc.ratio, func(t *testing.T) {
			code, stdout, _ := invoke("run", "--memory-limit-ratio", tc.ratio, "--config", filepath.Join(bad, "probes.yaml"))
			if code != 2 {
				t.Errorf("exit %d, want 2 (the bad configuration)", code)
			}
			line := `"level":"INFO","msg":"memory_limit_from_env","gomemlimit":"3GiB"}`
			if got := strings.Contains(stdout, line); got != tc.want {
				t.Errorf("log has %s: %v, want %v:\n%s", line, got, tc.want, stdout)
			}
		})
	}
}

// syncBuffer collects the shop's log.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// junit is the part of JUnit XML the test reads.
type junit struct {
	Suites []struct {
		Name     string `xml:"name,attr"`
		Tests    int    `xml:"tests,attr"`
		Failures int    `xml:"failures,attr"`
		Skipped  int    `xml:"skipped,attr"`
		Props    []struct {
			Name  string `xml:"name,attr"`
			Value string `xml:"value,attr"`
		} `xml:"properties>property"`
		Cases []struct {
			Name    string `xml:"name,attr"`
			Failure *struct {
				Message string `xml:"message,attr"`
				Type    string `xml:"type,attr"`
			} `xml:"failure"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

var traceRE = regexp.MustCompile(`trace_id=([0-9a-f]{32})\b`)

func TestOnceAgainstSandbox(t *testing.T) {
	shopLog := &syncBuffer{}
	sb, err := shop.StartSandbox(context.Background(), shop.SandboxOptions{
		Password: password, SettleDelay: 50 * time.Millisecond, Log: shopLog})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		sb.Close(ctx)
	})
	t.Setenv("SHOP_URL", sb.ShopURL)
	t.Setenv("SHOP_PASSWORD", password)
	// The shipped certificate check, against the sandbox's HTTPS side.
	caFile := filepath.Join(t.TempDir(), "shop-ca.pem")
	if err := os.WriteFile(caFile, sb.CAPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SHOP_TLS_ADDR", sb.TLSAddr)
	t.Setenv("SHOP_CA_FILE", caFile)
	repo := repoProbes(t)

	swallowed := shop.FaultSet{GatewayStatus: 504, SwallowErrors: true}
	tests := []struct {
		name   string
		faults *shop.FaultSet
		flags  []string // besides once --config
		junit  bool
		json   bool
		code   int
		stdout []string
		// expected JUnit/JSON outcome of the checkout run
		wantStatus result.Status
		wantClass  result.Class
	}{
		{
			name: "checkout passes", flags: []string{"--flow", "checkout"}, code: 0,
			stdout:     []string{"checkout PASSED", "login", "create_order", "pay", "confirm", "cancel_order (cleanup)"},
			wantStatus: result.Passed, wantClass: result.OK,
		},
		{
			name: "all flows pass", flags: nil, code: 0,
			stdout:     []string{"checkout PASSED", "shop_health PASSED", "shop_certificate PASSED"},
			wantStatus: result.Passed, wantClass: result.OK,
		},
		{
			name: "swallowed gateway error", faults: &swallowed, flags: []string{"--flow", "checkout"}, code: 1,
			stdout: []string{
				"checkout FAILED",
				"FAIL pay",
				`json.status == "success": got "processing"`,
				"class=swallowed_error",
				`checkout failed at step pay: json.status == "success": got "processing" (class swallowed_error)`,
				"skip confirm",
			},
			wantStatus: result.Failed, wantClass: result.SwallowedError,
		},
		{
			name: "swallowed gateway error, junit", faults: &swallowed, flags: []string{"--flow", "checkout"}, junit: true, code: 1,
			stdout:     []string{"FAIL pay"},
			wantStatus: result.Failed, wantClass: result.SwallowedError,
		},
		{
			name: "swallowed gateway error, json", faults: &swallowed, flags: []string{"--flow", "checkout"}, json: true, code: 1,
			wantStatus: result.Failed, wantClass: result.SwallowedError,
		},
		{
			// Slow is not broken (issue 12, item 6): the shipped flow
			// passes with pay just over pay_latency's 2s; the rule warns.
			name: "slow gateway, 2.1s, passes", faults: &shop.FaultSet{GatewayDelay: shop.Duration(2100 * time.Millisecond)},
			flags: []string{"--flow", "checkout"}, code: 0,
			stdout:     []string{"checkout PASSED", "pay"},
			wantStatus: result.Passed, wantClass: result.OK,
		},
		{
			name: "passing, junit and json", flags: []string{"--flow", "checkout"}, junit: true, json: true, code: 0,
			wantStatus: result.Passed, wantClass: result.OK,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sb.Faults.Clear("")
			if tc.faults != nil {
				sb.Faults.Set("", *tc.faults)
				t.Cleanup(func() { sb.Faults.Clear("") })
			}
			args := append([]string{"once", "--config", repo}, tc.flags...)
			junitPath := filepath.Join(t.TempDir(), "report.xml")
			if tc.junit {
				args = append(args, "--junit", junitPath)
			}
			if tc.json {
				args = append(args, "--json")
			}
			code, stdout, stderr := invoke(args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout, stderr)
			}
			for _, s := range tc.stdout {
				if !strings.Contains(stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout)
				}
			}
			if strings.Contains(stdout+stderr, password) {
				t.Errorf("output holds the password")
			}

			var traceID string
			switch {
			case tc.json:
				var runs []result.Run
				if err := json.Unmarshal([]byte(stdout), &runs); err != nil {
					t.Fatalf("--json output does not decode into []result.Run: %v\n%s", err, stdout)
				}
				if len(runs) != 1 {
					t.Fatalf("%d runs, want 1", len(runs))
				}
				r := runs[0]
				if r.Flow != "checkout" || r.Status != tc.wantStatus || r.Class != tc.wantClass || len(r.Steps) != 5 || r.Duration <= 0 {
					t.Errorf("run %s %s %s, %d steps, duration %s", r.Flow, r.Status, r.Class, len(r.Steps), r.Duration)
				}
				if tc.wantStatus == result.Failed {
					if r.FailedStep != "pay" || r.Failed() == nil || r.Failed().Message() != `json.status == "success": got "processing"` {
						t.Errorf("failed step %q: %+v", r.FailedStep, r.Failed())
					}
				}
				traceID = r.TraceID
			default:
				m := traceRE.FindStringSubmatch(stdout)
				if m == nil {
					t.Fatalf("no 32-hex trace id in stdout:\n%s", stdout)
				}
				traceID = m[1]
			}
			if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(traceID) {
				t.Errorf("trace id %q", traceID)
			}
			// The trace id printed is the one the shop saw.
			if !strings.Contains(shopLog.String(), traceID) {
				t.Errorf("the shop's log has no request with trace id %s", traceID)
			}

			if tc.junit {
				b, err := os.ReadFile(junitPath)
				if err != nil {
					t.Fatal(err)
				}
				if bytes.Contains(b, []byte(password)) {
					t.Errorf("JUnit report holds the password")
				}
				var j junit
				if err := xml.Unmarshal(b, &j); err != nil {
					t.Fatalf("JUnit report does not parse: %v\n%s", err, b)
				}
				if len(j.Suites) != 1 || j.Suites[0].Name != "checkout" || j.Suites[0].Tests != 5 {
					t.Fatalf("suites: %+v", j.Suites)
				}
				s := j.Suites[0]
				wantFailures := 0
				if tc.wantStatus == result.Failed {
					wantFailures = 1
				}
				if s.Failures != wantFailures {
					t.Errorf("failures=%d, want %d", s.Failures, wantFailures)
				}
				props := map[string]string{}
				for _, p := range s.Props {
					props[p.Name] = p.Value
				}
				if props["trace_id"] != traceID {
					t.Errorf("trace_id property %q, want %q", props["trace_id"], traceID)
				}
				for _, c := range s.Cases {
					if c.Name == "pay" && tc.wantStatus == result.Failed {
						if c.Failure == nil || c.Failure.Type != "swallowed_error" || !strings.Contains(c.Failure.Message, `got "processing"`) {
							t.Errorf("pay testcase failure: %+v", c.Failure)
						}
					}
				}
			} else if _, err := os.Stat(junitPath); err == nil {
				t.Errorf("a JUnit report was written without --junit")
			}
		})
	}
}

// checkoutOnStart is the shipped configuration with run_on_start on the
// checkout flow: it runs at once, not at its phase up to a minute later.
func checkoutOnStart(t *testing.T) string {
	t.Helper()
	src, dir := filepath.Dir(repoProbes(t)), t.TempDir()
	for _, f := range []string{"probes.yaml", "flows/checkout.yaml", "flows/health.yaml", "flows/certificate.yaml"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "flows/checkout.yaml" {
			b = []byte(strings.Replace(string(b), "\nevery: 60s\n", "\nevery: 60s\nrun_on_start: true\n", 1))
			if !strings.Contains(string(b), "run_on_start") {
				t.Fatal("flows/checkout.yaml no longer has every: 60s; adjust the test")
			}
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "probes.yaml")
}

// The daemon in-process: it serves, reloads on SIGHUP and stops cleanly on
// SIGTERM (exit 0), without the password in its log.
func TestRunDaemonSignals(t *testing.T) {
	sb, err := shop.StartSandbox(context.Background(), shop.SandboxOptions{Password: password})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		sb.Close(ctx)
	})
	t.Setenv("SHOP_URL", sb.ShopURL)
	t.Setenv("SHOP_PASSWORD", password)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"run", "--config", checkoutOnStart(t), "--listen", addr, "--shutdown-grace", "10s", "--state-dir", t.TempDir()}, stdout, stderr)
	}()
	client := &http.Client{Timeout: 2 * time.Second}
	up := false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case code := <-done:
			t.Fatalf("run exited early with %d:\n%s\n%s", code, stdout.String(), stderr.String())
		default:
		}
		if resp, err := client.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			up = resp.StatusCode == 200
			break
		}
	}
	if !up {
		t.Fatalf("the daemon did not come up on %s", addr)
	}
	// Wait for the first checkout run, so SIGTERM finds work to finish.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(stdout.String(), `"msg":"run","flow":"checkout"`); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no checkout run logged:\n%s", stdout.String())
		}
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); strings.Count(stdout.String(), `"msg":"config_loaded"`) < 2; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("SIGHUP did not reload:\n%s", stdout.String())
		}
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after SIGTERM, want 0\n%s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return within 20s of SIGTERM")
	}
	out := stdout.String()
	for _, want := range []string{`"msg":"listening"`, `"msg":"shutting_down"`, `"msg":"stopped"`, `"flow":"checkout"`, `"status":"passed"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s", want)
		}
	}
	if strings.Contains(out+stderr.String(), password) {
		t.Errorf("the daemon's output holds the password")
	}
}

// A daemon that cannot listen exits without having probed anything.
func TestRunListenInUse(t *testing.T) {
	shopLog := &syncBuffer{}
	sb, err := shop.StartSandbox(context.Background(), shop.SandboxOptions{Password: password, Log: shopLog})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		sb.Close(ctx)
	})
	t.Setenv("SHOP_URL", sb.ShopURL)
	t.Setenv("SHOP_PASSWORD", password)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	code, stdout, stderr := invoke("run", "--config", repoProbes(t), "--listen", ln.Addr().String(), "--state-dir", t.TempDir())
	if code == 0 || !strings.Contains(stderr, "listening on "+ln.Addr().String()) {
		t.Errorf("exit %d, stderr %q; want non-zero and the listen error", code, stderr)
	}
	time.Sleep(500 * time.Millisecond) // what a wrongly started schedule would have done by now
	if log := shopLog.String(); strings.Contains(log, "/healthz") || strings.Contains(log, "/api/login") {
		t.Errorf("the shop was probed by a daemon that never served:\n%s", log)
	}
	if strings.Contains(stdout, `"msg":"run"`) {
		t.Errorf("a run was logged:\n%s", stdout)
	}
}

// --config naming a device, a FIFO or a directory exits 2 at once with the
// path in the message (a device or FIFO used to be read forever).
func TestConfigNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "probes.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	for _, tc := range []struct{ path, want string }{
		{"/dev/zero", "prober: config /dev/zero: a device, not a regular file\n"},
		{fifo, "prober: config " + fifo + ": a named pipe (FIFO), not a regular file\n"},
		{dir, "prober: config " + dir + ": a directory, not a regular file\n"},
	} {
		for _, cmd := range []string{"validate", "run"} {
			t.Run(cmd+" "+tc.path, func(t *testing.T) {
				type out struct {
					code   int
					stderr string
				}
				done := make(chan out, 1)
				go func() {
					code, _, stderr := invoke(cmd, "--config", tc.path)
					done <- out{code, stderr}
				}()
				select {
				case o := <-done:
					if o.code != exitUsage || o.stderr != tc.want {
						t.Errorf("exit %d, stderr %q; want %d and %q", o.code, o.stderr, exitUsage, tc.want)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("still running after 10s")
				}
			})
		}
	}
}

// A corrupt state file (here emptied) stops `run` with exit 3 and one line
// saying what is wrong and how to go on; it is left where it was.
func TestRunCorruptStateExits3(t *testing.T) {
	t.Setenv("SHOP_PASSWORD", password)
	dir := t.TempDir()
	db := filepath.Join(dir, "prober.db")
	if err := os.WriteFile(db, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := invoke("run", "--config", repoProbes(t), "--listen", "127.0.0.1:0", "--state-dir", dir)
	want := "prober: alert state " + db + " is corrupt (the file is empty (0 bytes)); " +
		"to start with empty alert state (firing alerts, silences and undelivered pages in it are lost), move it aside (mv " + db + " " + db + ".corrupt) " +
		"or restart with --fresh-state, which renames it with a timestamp and starts fresh\n"
	if code != exitState || stderr != want {
		t.Errorf("exit %d, stderr\n%q\nwant %d and\n%q", code, stderr, exitState, want)
	}
	if st, err := os.Stat(db); err != nil || st.Size() != 0 {
		t.Errorf("the state file was touched: %v %v", st, err)
	}
}
