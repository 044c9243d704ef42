package browserkind

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/kinds/kindtest"
	"github.com/prober-dev/prober/internal/result"
)

// actionPages are pages whose #pay button a click may or may not reach;
// a click that reaches it says "paid" on the page.
var actionPages = map[string]string{
	"/plain": `<button id="pay">Pay</button>`,
	"/covered": `<button id="pay">Pay</button>
<div id="consent" class="banner modal" style="position:fixed;inset:0;background:rgba(0,0,0,.8)">We use cookies <input id="secret" value="s3cr3t-value"></div>`,
	"/uncovered": `<button id="pay">Pay</button>
<div id="consent" class="banner" style="position:fixed;inset:0;background:rgba(0,0,0,.8)">cookies</div>
<script>setTimeout(() => consent.remove(), 300);</script>`,
	"/disabled":      `<button id="pay" disabled>Pay</button><input id="card" disabled><input id="ro" readonly>`,
	"/enabled-later": `<button id="pay" disabled>Pay</button><script>setTimeout(() => pay.disabled = false, 300);</script>`,
	"/invisible":     `<button id="pay" style="visibility:hidden">Pay</button>`,
	"/moving": `<style>@keyframes slide { from { transform: translateX(0) } to { transform: translateX(600px) } }</style>
<button id="pay" style="animation: slide 1s linear infinite alternate">Pay</button>`,
	"/below": `<div style="height:3000px">tall</div><button id="pay">Pay</button>`,
	"/inner": `<button id="pay"><span id="label">Pay</span></button>`,
	"/label": `<label style="position:relative;display:inline-block;width:40px;height:40px"><input type="checkbox" id="pay" style="position:absolute;inset:0;margin:0">` +
		`<span style="position:absolute;inset:0;background:#36c"></span></label>`,
}

// actionShop serves actionPages; each button's click says "paid".
func actionShop(t *testing.T) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := actionPages[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<!doctype html><html><body><p id="out"></p>`+p+
			`<script>document.getElementById("pay").addEventListener("click", () => { out.textContent = "paid"; });</script></body></html>`)
	}))
	t.Cleanup(s.Close)
	return s.URL
}

// TestActionability: a click waits until its element is visible,
// enabled, stable and the hit target at its centre, and says which of
// these it never was; fill and select wait for visible and enabled.
func TestActionability(t *testing.T) {
	k := newKind(t)
	k.b.slots.setLimit(16) // every case at once: most wait for the timeout
	base := actionShop(t)
	const pos = `(flows/f.yaml:8:18)`
	for _, tc := range []struct {
		name, page, action string
		class              result.Class
		msg                string
	}{
		{"normal click", "/plain", `click: "#pay"`, "", ""},
		{"click on an inner element", "/inner", `click: "#pay"`, "", ""},
		{"styled checkbox under its label", "/label", `click: "#pay"`, "", ""},
		{"scrolled into view", "/below", `click: "#pay"`, "", ""},
		{"uncovered after 300ms", "/uncovered", `click: "#pay"`, "", ""},
		{"enabled after 300ms", "/enabled-later", `click: "#pay"`, "", ""},
		{"covered", "/covered", `click: "#pay"`, result.SelectorTimeout,
			`click "#pay" ` + pos + `: covered by div#consent.banner.modal until the step's timeout`},
		{"disabled", "/disabled", `click: "#pay"`, result.SelectorTimeout, `click "#pay" ` + pos + `: disabled until the step's timeout`},
		{"not visible", "/invisible", `click: "#pay"`, result.SelectorTimeout, `click "#pay" ` + pos + `: not visible until the step's timeout`},
		{"moving", "/moving", `click: "#pay"`, result.SelectorTimeout, `click "#pay" ` + pos + `: moving until the step's timeout`},
		{"absent", "/plain", `click: "#nothing"`, result.SelectorTimeout, `click "#nothing" ` + pos + `: no visible element matched within the step's timeout`},
		{"fill disabled", "/disabled", `fill: {selector: "#card", value: "4242"}`, result.SelectorTimeout, `: disabled until the step's timeout`},
		{"fill read-only", "/disabled", `fill: {selector: "#ro", value: "4242"}`, result.SelectorTimeout, `: read-only until the step's timeout`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // the waits to the timeout overlap
			steps := "  - name: s\n    timeout: " + stepTimeout.String() + "\n    browser:\n      actions:\n        - goto: " + base + tc.page +
				"\n        - " + tc.action + "\n"
			if tc.class == "" {
				steps += "        - wait_for: {text: paid}\n"
			}
			start := time.Now()
			run := kindtest.Run(t, "", flow(steps), k)
			s := run.Steps[0]
			if tc.class == "" {
				if run.Status != result.Passed {
					t.Fatalf("run %s: %s", run.Status, run.Summary())
				}
				return
			}
			if s.Class != tc.class || !strings.Contains(s.Message(), tc.msg) {
				t.Errorf("class %s %q, want %s containing %q", s.Class, s.Message(), tc.class, tc.msg)
			}
			if strings.Contains(s.Message(), "cookies") || strings.Contains(s.Message(), "s3cr3t") {
				t.Errorf("the message shows the covering element's text or values: %q", s.Message())
			}
			if d := time.Since(start); d > stepTimeout+5*time.Second {
				t.Errorf("took %s for a %s step", d, stepTimeout)
			}
		})
	}
}
