package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/result"
)

// The storefront's checkout in Chromium (flows/checkout_browser.yaml, as
// shipped) against the sandbox shop in its own process: it passes, and each
// fault of the storefront fails it at the right action with the right
// class and a sentence that says what the customer met. The failed run's
// trace id is in the shop's log on the page's own requests: its documents
// and the confirmation page's status fetch.

// storefrontConfig writes a probes.yaml that runs the shipped browser flow
// (a copy, so its positions in messages are the shipped file's).
func storefrontConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	flow, err := os.ReadFile("../flows/checkout_browser.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "flows"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "flows", "checkout_browser.yaml"), flow, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "probes.yaml")
	probes := `vars: {shop_url: "${env:SHOP_URL}", shop_user: synthetic-1}
secrets: {SHOP_PASSWORD: {env: SHOP_PASSWORD}}
flows: [flows/checkout_browser.yaml]
`
	if err := os.WriteFile(cfg, []byte(probes), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

var traceIDRE = regexp.MustCompile(`trace_id=([0-9a-f]{32})`)

// storefront is a sandbox shop process for one subtest and a `once` of the
// browser flow against it.
type storefront struct {
	url, log string
	env      []string
	cfg      string
}

func newStorefront(t *testing.T, cfg string) *storefront {
	t.Helper()
	addr := freeAddr(t)
	sf := &storefront{url: "http://" + addr, log: filepath.Join(t.TempDir(), "shop.log"), cfg: cfg}
	sf.env = []string{"SHOP_PASSWORD=" + secretPW, "SHOP_URL=" + sf.url}
	start(t, sf.env, "shop", "--listen", addr, "--log", sf.log, "--settle-delay", "100ms")
	waitHTTP(t, sf.url+"/healthz")
	return sf
}

func (sf *storefront) once(t *testing.T) (string, int) {
	t.Helper()
	began := time.Now()
	out, errOut, code := runCmd(t, sf.env, "once", "--config", sf.cfg, "--flow", "checkout_browser")
	t.Logf("once: exit %d after %s", code, time.Since(began).Round(time.Millisecond))
	assertNoSecret(t, secretPW, out, errOut)
	if code != 0 && code != 1 {
		t.Fatalf("once: exit %d\n%s\n%s", code, out, errOut)
	}
	return out, code
}

// TestStorefrontFaults: passing, then each fault. The three that wait for
// the step's timeout (45s) run at once, each against its own shop.
func TestStorefrontFaults(t *testing.T) {
	chromiumPath(t) // without chromium: fail (or skip, when told) before starting anything
	cfg := storefrontConfig(t)

	t.Run("healthy", func(t *testing.T) {
		out, code := newStorefront(t, cfg).once(t)
		if code != 0 || !strings.Contains(out, "checkout_browser PASSED") {
			t.Fatalf("healthy storefront: exit %d\n%s", code, out)
		}
	})

	const flowFile = "flows/checkout_browser.yaml:"
	for _, tc := range []struct {
		name, fault string
		class       result.Class
		says        []string
	}{
		{"gateway 504 swallowed", `{"gateway_status":504,"swallow_errors":true}`, result.SwallowedError,
			[]string{`json.values.order_status == "confirmed": got "processing"`, `page.text contains "Payment confirmed"`}},
		{"script error on the pay page", `{"pay_script_error":true}`, result.ScriptError,
			[]string{`wait_for url "/store/orders/" (` + flowFile + `32:21): not seen within the step's timeout; the page threw: TypeError: Cannot read properties of undefined (reading 'mount')`}},
		{"pay button hidden", `{"pay_button_hidden":true}`, result.SelectorTimeout,
			[]string{`click "#pay" (` + flowFile + `31:18): covered by div#consent.overlay until the step's timeout`}},
		{"slow page", `{"page_delay":"2m"}`, result.Timeout,
			[]string{`goto {{shop_url}}/store/login (` + flowFile + `22:17): the page did not load within the step's timeout`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.class != result.SwallowedError {
				t.Parallel() // after the swallowed one, which runs first, alone
			}
			sf := newStorefront(t, cfg)
			do(t, "PUT", sf.url+"/admin/faults", tc.fault)
			out, code := sf.once(t)
			if code != 1 {
				t.Fatalf("exit %d, want 1\n%s", code, out)
			}
			if !strings.Contains(out, "checkout_browser failed at step checkout: ") || !strings.Contains(out, "class="+string(tc.class)) {
				t.Errorf("want step checkout failed with class %s:\n%s", tc.class, out)
			}
			for _, s := range tc.says {
				if !strings.Contains(out, s) {
					t.Errorf("once output lacks %q:\n%s", s, out)
				}
			}
			if tc.class != result.SwallowedError {
				return
			}
			// The failed run's trace id, in the shop's log on the requests
			// the page made: documents and the status fetch, marked synthetic.
			m := traceIDRE.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no trace id in:\n%s", out)
			}
			routes := map[string]bool{}
			swallowed := false
			for _, l := range logLines(t, sf.log, m[1]) {
				if l["msg"] == "gateway_error_swallowed" {
					swallowed = true
				}
				if l["msg"] != "request" || l["trace_id"] != m[1] {
					continue
				}
				if l["service"] == "shop" && l["synthetic"] != true {
					t.Errorf("a request of the page not marked synthetic: %v", l)
				}
				routes[l["service"].(string)+" "+l["route"].(string)] = true
			}
			for _, want := range []string{
				"shop GET /store/login", "shop POST /store/login", "shop GET /store/products/{sku}", "shop POST /store/checkout",
				"shop GET /store/orders/{id}/return", "shop GET /store/orders/{id}", // documents
				"shop GET /store/orders/{id}/status", // the confirmation page's fetch
				"gateway POST /v1/charges",           // and the shop's call on its behalf
			} {
				if !routes[want] {
					t.Errorf("trace %s: no %s in the shop's log (seen %v)", m[1], want, routes)
				}
			}
			if !swallowed {
				t.Errorf("trace %s: the shop's gateway_error_swallowed line is missing", m[1])
			}
			// The gateway's hosted page is a third party: no trace headers there.
			for _, l := range logLines(t, sf.log, `"route":"GET /pay/{id}"`) {
				if l["trace_source"] != "generated" {
					t.Errorf("the hosted page got trace headers: %v", l)
				}
			}
		})
	}
}

// TestStorefrontDemo: with Chromium on PATH the demo runs the browser flow
// beside the API's, and it passes (no console error, so the pages pass
// their CSP).
func TestStorefrontDemo(t *testing.T) {
	chromiumPath(t)
	addr := freeAddr(t)
	p := start(t, []string{"SHOP_PASSWORD=" + secretPW}, "demo", "--listen", addr, "--dir", t.TempDir())
	base := "http://" + addr
	r := waitRun(t, base, "checkout_browser", 90*time.Second, func(*result.Run) bool { return true })
	if !r.OK() {
		t.Fatalf("the demo's browser flow failed: %s", r.Summary())
	}
	banner := read(t, p.stdout)
	if !strings.Contains(banner, "runs in Chromium") || !strings.Contains(banner, "/store/login") {
		t.Errorf("the banner does not say the browser flow runs:\n%s", banner)
	}
}
