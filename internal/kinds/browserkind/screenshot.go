package browserkind

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/runner"
)

// Bounds on screenshots: a failed browser step takes one PNG of the
// viewport, scaled down until it fits ScreenshotLimit, and a run takes at
// most ShotsPerRun (the store keeps the newest few over all flows).
const (
	ScreenshotLimit = 256 << 10
	ShotsPerRun     = 2
	// minForm is the shortest secret form masked on a page: a shorter one
	// (a base64 cut of a short value) would mask ordinary words.
	minForm = 6
)

// scales are tried in order until the PNG fits ScreenshotLimit.
var scales = []float64{1, 0.75, 0.5, 0.35, 0.25}

// Mask replaces a secret on a page before its screenshot.
const Mask = "••••••••"

// maskJS masks, in the page's DOM, the value of every field that fills
// marks as filled from a secret, and every field value, attribute shown
// and text node that contains a form of a secret; it returns how many it
// masked. Shadow roots and cross-origin frames are out of its reach.
const maskJS = `((forms, sels, mask) => {
	let n = 0;
	const has = s => typeof s === "string" && s !== "" && forms.some(f => s.includes(f));
	const docs = [document];
	for (const f of document.querySelectorAll("iframe, frame")) {
		try { if (f.contentDocument) docs.push(f.contentDocument); } catch (e) {}
	}
	for (const d of docs) {
		for (const sel of sels) {
			let els = [];
			try { els = d.querySelectorAll(sel); } catch (e) {}
			for (const e of els) if ("value" in e && e.value !== mask) { e.value = mask; n++; }
		}
		for (const e of d.querySelectorAll("input, textarea, select, option")) {
			if (has(e.value)) { e.value = mask; n++; }
		}
		for (const e of d.querySelectorAll("*")) {
			for (const a of ["value", "placeholder", "title", "alt", "aria-label", "href", "src", "srcdoc"]) {
				if (has(e.getAttribute(a))) { e.setAttribute(a, a === "href" || a === "src" ? "#" : a === "srcdoc" ? "" : mask); n++; }
			}
		}
		const w = d.createTreeWalker(d.documentElement || d, NodeFilter.SHOW_TEXT);
		for (let t = w.nextNode(); t; t = w.nextNode()) {
			if (has(t.nodeValue)) { t.nodeValue = mask; n++; }
		}
		if (has(d.title)) { d.title = mask; n++; }
	}
	return n;
})`

// errMask is why a screenshot was not taken: the page could not be
// masked, so it might show a secret.
var errMask = errors.New("the page's secrets could not be masked")

// maskSecrets runs maskJS on the page with forms and the selectors of the
// fields filled from a secret; it returns how many it masked.
func maskSecrets(ctx context.Context, t *chromedp.Target, forms, sels []string) (int, error) {
	keep := []string{} // JSON [], not null
	for _, f := range forms {
		if len([]rune(f)) >= minForm {
			keep = append(keep, f)
		}
	}
	if len(keep) == 0 && len(sels) == 0 {
		return 0, nil
	}
	fj, _ := json.Marshal(keep)
	sj, _ := json.Marshal(append([]string{}, sels...))
	n, err := chromedp.Evaluate[int](maskJS+"("+string(fj)+", "+string(sj)+", "+jsString(Mask)+")")(ctx, t)
	if err != nil {
		if ctx.Err() != nil {
			return 0, fmt.Errorf("%w: no time left in the step", errMask)
		}
		return 0, errMask // not err: its text could quote the expression
	}
	return n, nil
}

// screenshot takes the page's picture for x, its secrets masked first;
// no picture when masking fails. It records what it did in the attr
// screenshot.
func (s *Spec) screenshot(ctx context.Context, t *chromedp.Target, x *runner.Exchange) {
	var sels []string
	for _, a := range s.Actions {
		if a.Op == Fill && a.Value != nil {
			for _, r := range a.Value.Refs() {
				if r.Secret {
					sels = append(sels, a.Selector)
					break
				}
			}
		}
	}
	n, err := maskSecrets(ctx, t, x.SecretForms(), sels)
	if err != nil {
		x.Attr("screenshot", "not taken: "+err.Error())
		return
	}
	sh, err := capture(ctx, t)
	if err != nil {
		x.Attr("screenshot", "not taken: "+line(err.Error()))
		return
	}
	x.Screenshot(sh)
	x.Attr("screenshot", fmt.Sprintf("%dx%d, %d KiB, %d secrets masked", sh.Width, sh.Height, (sh.Bytes+1023)/1024, n))
}

// capture takes a PNG of the visible viewport, scaled down until it fits
// ScreenshotLimit.
func capture(ctx context.Context, t *chromedp.Target) (*result.Screenshot, error) {
	m, err := cdp.Call(ctx, t, page.GetLayoutMetrics, cdp.Empty{})
	if err != nil {
		return nil, fmt.Errorf("reading the page's size: %w", err)
	}
	vp := page.Viewport{Width: ViewportWidth, Height: ViewportHeight}
	if v := m.CSSVisualViewport; v != nil && v.ClientWidth > 0 && v.ClientHeight > 0 {
		vp.X, vp.Y, vp.Width, vp.Height = v.PageX, v.PageY, v.ClientWidth, v.ClientHeight
	}
	for _, sc := range scales {
		clip := vp
		clip.Scale = sc
		res, err := cdp.Call(ctx, t, page.CaptureScreenshot, page.CaptureScreenshotParams{Format: page.CaptureScreenshotFormatPng, Clip: &clip})
		if err != nil {
			return nil, fmt.Errorf("capturing the page: %w", err)
		}
		if len(res.Data) > ScreenshotLimit {
			continue
		}
		cfg, err := png.DecodeConfig(bytes.NewReader(res.Data))
		if err != nil {
			return nil, fmt.Errorf("the browser's PNG: %w", err)
		}
		return &result.Screenshot{PNG: res.Data, Bytes: len(res.Data), Width: cfg.Width, Height: cfg.Height}, nil
	}
	return nil, fmt.Errorf("more than %d KiB even at scale %g", ScreenshotLimit>>10, scales[len(scales)-1])
}

// failing says whether the step fails on what the page shows: an action
// failed, or an expectation of the step does not hold (which the runner
// checks after Execute, when the page is gone).
func (s *Spec) failing(class result.Class, x *runner.Exchange) bool {
	if class != "" {
		return true
	}
	for _, e := range s.step.Expect {
		if _, ok := e.Check(x.Response()); !ok {
			return true
		}
	}
	return false
}
