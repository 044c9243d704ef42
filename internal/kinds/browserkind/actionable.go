package browserkind

import (
	"context"
	"errors"
	"fmt"

	"github.com/chromedp/chromedp"
)

// Actionability, as Playwright checks it: an action waits until its
// element can take it, not merely until it exists. A click that lands on
// a consent banner over the pay button is a customer who cannot pay; a
// step that "clicked" through to the banner would pass.

// notActionable is why the element of an action could not take it when
// the step's time ran out.
type notActionable struct{ why string }

func (e *notActionable) Error() string { return e.why }

// whyAbsent is the reason while nothing matches the selector.
const whyAbsent = "absent"

// actionableJS answers whether the first element sel matches can take
// the action mode ("click", "fill", "select") now: visible (a box, not
// visibility:hidden or in a display:none subtree), enabled, for fill
// writable; for click also stable (the same box in two animation frames,
// so an element still sliding in is not clicked where it was) and the hit
// target at its centre (what a person's click there would reach; a
// covering element is named by tag, id and classes: never its text or
// other attributes, which can hold what a customer typed). The point
// to click is the centre, after scrolling the element into view.
const actionableJS = `(async (sel, mode) => {
	const el = document.querySelector(sel);
	if (!el) return {why: "absent"};
	const box = () => el.getBoundingClientRect();
	let r = box();
	if (r.width === 0 || r.height === 0 || (el.checkVisibility && !el.checkVisibility({visibilityProperty: true}))) return {why: "not visible"};
	if (el.matches(":disabled") || el.getAttribute("aria-disabled") === "true") return {why: "disabled"};
	if (mode === "fill" && el.readOnly === true) return {why: "read-only"};
	if (mode !== "click") return {ok: true};
	if (r.top < 0 || r.left < 0 || r.bottom > innerHeight || r.right > innerWidth) {
		if (el.scrollIntoViewIfNeeded) el.scrollIntoViewIfNeeded(true); else el.scrollIntoView({block: "center", inline: "center"});
	}
	// A rendered frame: two boxes read without one in between are equal
	// even on a moving element (a busy machine's rAF can take over 100 ms).
	// A hidden page renders none, so it waits 100 ms instead; 1 s bounds a
	// visible page whose frames stall.
	const frame = () => new Promise(res => {
		if (document.hidden) { setTimeout(res, 100); return; }
		requestAnimationFrame(() => res()); setTimeout(res, 1000);
	});
	await frame();
	const a = box();
	await frame();
	r = box();
	if (a.x !== r.x || a.y !== r.y || a.width !== r.width || a.height !== r.height) return {why: "moving"};
	const x = r.left + r.width / 2, y = r.top + r.height / 2;
	const hit = document.elementFromPoint(x, y);
	if (!hit) return {why: "outside the viewport"};
	for (let n = hit; n; n = n.parentNode || n.host) if (n === el) return {ok: true, x, y};
	// A styled checkbox: its label drawn over it passes the click on.
	const label = hit.closest("label");
	if (label && label.control === el) return {ok: true, x, y};
	let name = hit.localName;
	if (hit.id) name += "#" + hit.id;
	for (const c of [...hit.classList].slice(0, 3)) name += "." + c;
	return {why: "covered", by: name};
})(%s, %s)`

// check is actionableJS's answer.
type check struct {
	OK  bool    `json:"ok"`
	Why string  `json:"why"`
	By  string  `json:"by"`
	X   float64 `json:"x"`
	Y   float64 `json:"y"`
}

// reason is the check's why as a message says it.
func (c check) reason() string {
	if c.Why == "covered" {
		return "covered by " + coverName(c.By)
	}
	return c.Why
}

// coverName bounds a covering element's tag#id.classes: a page's generated
// class names can be long.
func coverName(s string) string {
	const max = 80
	s = cut(s, max)
	if s == "" {
		return "an element"
	}
	return s
}

// actionable waits until the first element sel matches can take the
// action (see actionableJS), checking every pollEvery until ctx ends;
// then a *notActionable says why not. For a click, x and y are the point
// to press.
func actionable(ctx, bctx context.Context, t *chromedp.Target, mode, sel string) (x, y float64, err error) {
	js := fmt.Sprintf(actionableJS, jsString(sel), jsString(mode))
	last := check{Why: whyAbsent}
	err = poll(ctx, bctx, func(ctx context.Context) (bool, error) {
		c, err := chromedp.Evaluate[check](js, chromedp.EvalAwaitPromise)(ctx, t)
		if err != nil {
			return false, err // navigating, most likely: the last reason stands
		}
		if c.OK {
			x, y = c.X, c.Y
			return true, nil
		}
		last = c
		return false, nil
	})
	if err != nil && ctx.Err() != nil && bctx.Err() == nil {
		return 0, 0, errors.Join(&notActionable{why: last.reason()}, err)
	}
	return x, y, err
}
