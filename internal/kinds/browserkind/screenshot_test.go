package browserkind

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image/png"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/prober-dev/prober/internal/kinds/kindtest"
	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/secret"
)

const testSecret = "s3cr3t-value" // kindtest's secret S

// TestScreenshotOnFailure: a failed browser step (an action, or an
// expectation) keeps a PNG within ScreenshotLimit, with the secrets it
// typed masked first; a passing step keeps none, and a run takes at most
// ShotsPerRun.
func TestScreenshotOnFailure(t *testing.T) {
	k := newKind(t)
	first, _, _, _ := shop(t)
	step := func(name, extra string) string {
		return "  - name: " + name + "\n    timeout: " + stepTimeout.String() + "\n    browser:\n      actions:\n        - goto: " + first.URL + "/card\n" +
			"        - fill: {selector: \"#card\", value: \"{{secret:S}}\"}\n        - wait_for: {text: card}\n" + extra
	}
	t.Run("action fails", func(t *testing.T) {
		run := kindtest.Run(t, "", flow(step("pay", "        - click: \"#nothing\"\n")), k)
		s := run.Steps[0]
		if s.Class != result.SelectorTimeout {
			t.Fatalf("class %s %q", s.Class, s.Message())
		}
		sh := s.Screenshot
		if sh == nil {
			t.Fatalf("no screenshot; attrs %v", s.Attrs)
		}
		cfg, err := png.DecodeConfig(bytes.NewReader(sh.PNG))
		if err != nil || len(sh.PNG) > ScreenshotLimit || sh.Bytes != len(sh.PNG) || cfg.Width != sh.Width || sh.Width == 0 || sh.Height == 0 {
			t.Errorf("screenshot %d bytes %dx%d (PNG %v %dx%d)", len(sh.PNG), sh.Width, sh.Height, err, cfg.Width, cfg.Height)
		}
		// The field filled from the secret and the text that echoed it.
		if a := s.Attr("screenshot"); !strings.HasSuffix(a, ", 2 secrets masked") {
			t.Errorf("attr screenshot %q, want 2 secrets masked", a)
		}
		if s.Attr("title") != "Card" || !strings.HasSuffix(s.Attr("url"), "/card") {
			t.Errorf("last title %q url %q", s.Attr("title"), s.Attr("url"))
		}
		data, _ := json.Marshal(run)
		if strings.Contains(string(data), testSecret) || strings.Contains(string(data), "iVBOR") {
			t.Errorf("the run's JSON has the secret or the PNG: %s", data)
		}
	})
	t.Run("expectation fails", func(t *testing.T) {
		run := kindtest.Run(t, "", flow(step("pay", "    expect: ['page.title == \"Paid\"']\n")), k)
		if s := run.Steps[0]; s.Class != result.Assertion || s.Screenshot == nil {
			t.Errorf("class %s, screenshot %v; attrs %v", s.Class, s.Screenshot != nil, s.Attrs)
		}
	})
	t.Run("passes", func(t *testing.T) {
		run := kindtest.Run(t, "", flow(step("pay", "")), k)
		if s := run.Steps[0]; run.Status != result.Passed || s.Screenshot != nil || s.Attr("screenshot") != "" {
			t.Errorf("run %s, screenshot %v %q", run.Summary(), s.Screenshot != nil, s.Attr("screenshot"))
		}
	})
	t.Run("per run", func(t *testing.T) {
		fail := "        - click: \"#nothing\"\n    timeout: 9s\n"
		f := flow(step("pay", fail)) + "cleanup:\n" + step("undo1", fail) + step("undo2", fail)
		f = strings.ReplaceAll(f, "    timeout: "+stepTimeout.String()+"\n", "")
		run := kindtest.Run(t, "", f, k)
		n := 0
		for _, s := range run.Steps {
			if s.Class != result.SelectorTimeout {
				t.Errorf("%s: class %s %q", s.Name, s.Class, s.Message())
			}
			if s.Screenshot != nil {
				n++
			}
		}
		if n != ShotsPerRun {
			t.Errorf("%d screenshots in a run of %d failed steps, want %d; attrs %v", n, len(run.Steps), ShotsPerRun, run.Steps[0].Attrs)
		}
	})
}

// TestMaskSecrets: masking reaches the page's DOM: a field filled from a
// secret, fields and text holding a secret in any form the redactor
// knows (URL-escaped in a link, base64 in a field), attributes, and a
// same-origin frame; nothing of the secret is left.
func TestMaskSecrets(t *testing.T) {
	k := newKind(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	bctx, err := k.b.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tctx, tcancel := chromedp.NewContext(bctx, chromedp.WithNewBrowserContext())
	defer tcancel()
	stop := context.AfterFunc(ctx, tcancel)
	defer stop()
	b64 := base64.StdEncoding.EncodeToString([]byte(testSecret))
	html := `<title>t</title><input id="typed"><input id="other" value="x">` +
		`<p>Your key is ` + testSecret + `.</p><a href="/k?v=` + url.QueryEscape(testSecret) + `" title="key ` + testSecret + `">link</a>` +
		`<textarea id="ta">token ` + b64 + `</textarea><iframe srcdoc="<p>frame ` + testSecret + `</p>"></iframe>`
	for _, a := range []chromedp.Action[chromedp.Void]{
		chromedp.Navigate("data:text/html," + url.PathEscape(html)),
		chromedp.WaitReady("iframe"),
		chromedp.SendKeys("#typed", "typed-but-not-a-form"),
	} {
		if _, err := chromedp.Run(tctx, a); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond) // the srcdoc frame loads
	target := chromedp.FromContext(tctx).Target
	// No field filled from a secret: the text alone.
	if _, err := maskSecrets(ctx, target, []string{"no-such-secret"}, nil); err != nil {
		t.Fatalf("without selectors: %v", err)
	}
	n, err := maskSecrets(ctx, target, secret.Forms(testSecret), []string{"#typed"})
	if err != nil {
		t.Fatal(err)
	}
	dom, err := chromedp.Evaluate[string](`document.documentElement.outerHTML + " | " +
		[...document.querySelectorAll("input, textarea")].map(e => e.value).join(" | ") + " | " +
		document.querySelector("iframe").contentDocument.body.innerHTML`)(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range append(secret.Forms(testSecret), "typed-but-not-a-form") {
		if len(f) >= minForm && strings.Contains(dom, f) {
			t.Errorf("%q left on the page: %s", f, dom)
		}
	}
	// typed, the text, the link's href and title, the textarea (its
	// text node and value), the frame's text.
	if n < 6 || !strings.Contains(dom, Mask) || !strings.Contains(dom, `value="x"`) && !strings.Contains(dom, "| x |") {
		t.Errorf("%d masked: %s", n, dom)
	}
}
