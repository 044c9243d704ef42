package web

import (
	"html/template"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// History is the durable run history (the daemon's, on disk): uptime over
// long windows and a day of latency, which the flow page, the status page
// and the badges show. Implementations must be safe for concurrent use.
type History interface {
	// Uptime counts flow's final runs in the window of length window
	// ending at at, and those that passed.
	Uptime(flow string, window time.Duration, at time.Time) (good, total int)
	// Latency returns flow's buckets from the one holding from to the one
	// holding to, oldest first; buckets without runs are left out.
	Latency(flow string, from, to time.Time) []LatencyPoint
}

// LatencyPoint is one bucket of a flow's final runs.
type LatencyPoint struct {
	Start        time.Time
	Width        time.Duration
	Runs, Failed int
	Mean, Max    time.Duration
}

// uptimeWindows are what the flow page and the badges show.
var uptimeWindows = []struct {
	Name string
	W    time.Duration
}{{"24h", 24 * time.Hour}, {"7d", 7 * 24 * time.Hour}, {"30d", 30 * 24 * time.Hour}}

// uptimeView is one window's figure.
type uptimeView struct {
	Window, Text, Title, CSS string
}

// percent is good/total as a percentage truncated (not rounded) to two
// decimals, so that one failure in 100,000 never shows as 100.00%; "" when
// there are no runs.
func percent(good, total int) string {
	return percentF(float64(good), float64(total))
}

// percentF is percent of counts that need not be whole (Prometheus's).
func percentF(good, total float64) string {
	if !(total > 0) {
		return ""
	}
	p := math.Floor(10000*good/total) / 100
	return strconv.FormatFloat(p, 'f', 2, 64) + "%"
}

func (s *server) uptime(flow string, name string, w time.Duration, now time.Time) uptimeView {
	g, n := s.o.History.Uptime(flow, w, now)
	v := uptimeView{Window: name, Text: percent(g, n), CSS: "pass"}
	if n == 0 {
		v.Text, v.CSS, v.Title = "no data", "nodata", "no runs in the last "+name
		return v
	}
	if g < n {
		v.CSS = "fail"
	}
	v.Title = strconv.Itoa(g) + " of " + strconv.Itoa(n) + " " + plural(n, "run", "runs") + " passed in the last " + name
	return v
}

func (s *server) uptimes(flow string, now time.Time) []uptimeView {
	out := make([]uptimeView, len(uptimeWindows))
	for i, w := range uptimeWindows {
		out[i] = s.uptime(flow, w.Name, w.W, now)
	}
	return out
}

// Latency graph geometry: the plot area inside the SVG's margins.
const (
	graphW, graphH         = 720, 160
	graphLeft, graphRight  = 56, 8
	graphTop, graphBottom  = 10, 22
	graphSpan              = 24 * time.Hour
	graphPlotW, graphPlotH = graphW - graphLeft - graphRight, graphH - graphTop - graphBottom
)

// latencySVG draws the last day of flow's latency: per bucket the mean (a
// line) and the longest run (a lighter line), a red tick under each bucket
// with a failure. Server-made inline SVG: presentation attributes only (no
// style attribute, no script), so the pages' CSP allows it as it is. Every
// text in it is escaped; the rest is numbers.
func latencySVG(points []LatencyPoint, now time.Time) template.HTML {
	from := now.Add(-graphSpan)
	var top time.Duration
	for _, p := range points {
		top = max(top, p.Max)
	}
	top = niceCeil(top)
	x := func(t time.Time) float64 {
		return graphLeft + graphPlotW*min(max(t.Sub(from).Seconds()/graphSpan.Seconds(), 0), 1)
	}
	y := func(d time.Duration) float64 {
		return graphTop + graphPlotH*(1-min(float64(d)/float64(max(top, 1)), 1))
	}
	var b strings.Builder
	b.WriteString(`<svg class="latency" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 720 160" role="img" aria-label="`)
	b.WriteString(template.HTMLEscapeString(latencyLabel(points)))
	b.WriteString(`">`)
	// Axes and grid: top, middle and zero lines, labelled.
	for _, f := range []float64{0, .5, 1} {
		d := time.Duration(float64(top) * f)
		yy := fmtF(y(d))
		b.WriteString(`<line x1="` + fmtF(graphLeft) + `" x2="` + fmtF(graphW-graphRight) + `" y1="` + yy + `" y2="` + yy + `" stroke="#ddd"/>`)
		b.WriteString(`<text x="` + fmtF(graphLeft-4) + `" y="` + fmtF(y(d)+4) + `" text-anchor="end" font-size="11" fill="#555">` +
			template.HTMLEscapeString(durLabel(d)) + `</text>`)
	}
	for h := 0; h <= 24; h += 6 {
		t := from.Add(time.Duration(h) * time.Hour)
		label := "now"
		if h < 24 {
			label = "-" + strconv.Itoa(24-h) + "h"
		}
		anchor := "middle"
		if h == 24 {
			anchor = "end"
		}
		b.WriteString(`<text x="` + fmtF(x(t)) + `" y="` + fmtF(graphH-6) + `" text-anchor="` + anchor + `" font-size="11" fill="#555">` + label + `</text>`)
	}
	// Lines: a gap (buckets without runs) starts a new segment; a dot
	// marks each mean, so that a lone bucket shows too.
	path := func(val func(LatencyPoint) time.Duration) string {
		parts := make([]string, len(points))
		for i, p := range points {
			c := "L"
			if i == 0 || p.Start.Sub(points[i-1].Start) > p.Width {
				c = "M"
			}
			parts[i] = c + fmtF(x(p.Start.Add(p.Width/2))) + " " + fmtF(y(val(p)))
		}
		return strings.Join(parts, " ")
	}
	if len(points) > 0 {
		b.WriteString(`<path d="` + path(func(p LatencyPoint) time.Duration { return p.Max }) + `" fill="none" stroke="#9ab" stroke-width="1"/>`)
		b.WriteString(`<path d="` + path(func(p LatencyPoint) time.Duration { return p.Mean }) + `" fill="none" stroke="#0645ad" stroke-width="1.5"/>`)
	}
	for _, p := range points {
		b.WriteString(`<circle cx="` + fmtF(x(p.Start.Add(p.Width/2))) + `" cy="` + fmtF(y(p.Mean)) + `" r="1.5" fill="#0645ad"/>`)
	}
	for _, p := range points {
		bx := x(p.Start)
		w := max(x(p.Start.Add(p.Width))-bx, 1)
		title := absTime(p.Start) + " +" + p.Width.String() + ": " + strconv.Itoa(p.Runs) + " " + plural(p.Runs, "run", "runs") +
			", mean " + result2(p.Mean) + ", max " + result2(p.Max)
		if p.Failed > 0 {
			title += ", " + strconv.Itoa(p.Failed) + " failed"
			b.WriteString(`<rect x="` + fmtF(bx) + `" y="` + fmtF(graphTop+graphPlotH+1) + `" width="` + fmtF(w) + `" height="4" fill="#b00020"/>`)
		}
		// A transparent column per bucket carries its figures as a tooltip.
		b.WriteString(`<rect x="` + fmtF(bx) + `" y="` + fmtF(graphTop) + `" width="` + fmtF(w) + `" height="` + fmtF(graphPlotH) +
			`" fill="transparent"><title>` + template.HTMLEscapeString(title) + `</title></rect>`)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // built above: numbers and escaped text only
}

func latencyLabel(points []LatencyPoint) string {
	if len(points) == 0 {
		return "latency over the last 24 hours: no runs"
	}
	var worst time.Duration
	runs := 0
	for _, p := range points {
		worst = max(worst, p.Max)
		runs += p.Runs
	}
	return "latency over the last 24 hours, mean and longest per " + points[0].Width.String() + ": " +
		strconv.Itoa(runs) + " " + plural(runs, "run", "runs") + ", longest " + result2(worst)
}

// niceCeil rounds d up to 1, 2 or 5 times a power of ten milliseconds.
func niceCeil(d time.Duration) time.Duration {
	if d <= time.Millisecond {
		return time.Millisecond
	}
	for step := time.Millisecond; ; step *= 10 {
		for _, m := range []time.Duration{1, 2, 5} {
			if m*step >= d {
				return m * step
			}
		}
	}
}

func durLabel(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	return result2(d)
}

// result2 is a duration to about three significant digits.
func result2(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}

func fmtF(f float64) string { return strconv.FormatFloat(math.Round(f*10)/10, 'f', -1, 64) }

// ---- badges ----

// badge is a flat badge in the shields.io manner: a grey label and a
// coloured value.
func badge(label, value, color, title string) []byte {
	lw, vw := textWidth(label)+10, textWidth(value)+10
	w := lw + vw
	esc := template.HTMLEscapeString
	var b strings.Builder
	b.WriteString(`<svg xmlns="http://www.w3.org/2000/svg" width="` + strconv.Itoa(w) + `" height="20" role="img" aria-label="` + esc(label+": "+value) + `">`)
	b.WriteString(`<title>` + esc(title) + `</title>`)
	b.WriteString(`<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>`)
	b.WriteString(`<clipPath id="r"><rect width="` + strconv.Itoa(w) + `" height="20" rx="3" fill="#fff"/></clipPath>`)
	b.WriteString(`<g clip-path="url(#r)"><rect width="` + strconv.Itoa(lw) + `" height="20" fill="#555"/><rect x="` + strconv.Itoa(lw) +
		`" width="` + strconv.Itoa(vw) + `" height="20" fill="` + color + `"/><rect width="` + strconv.Itoa(w) + `" height="20" fill="url(#s)"/></g>`)
	b.WriteString(`<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">`)
	for _, t := range []struct {
		x    int
		text string
	}{{lw / 2, label}, {lw + vw/2, value}} {
		b.WriteString(`<text x="` + strconv.Itoa(t.x) + `" y="15" fill="#010101" fill-opacity=".3">` + esc(t.text) + `</text>`)
		b.WriteString(`<text x="` + strconv.Itoa(t.x) + `" y="14">` + esc(t.text) + `</text>`)
	}
	b.WriteString(`</g></svg>`)
	return []byte(b.String())
}

// textWidth estimates text's width in pixels at Verdana 11px (a badge is
// sized without fonts at hand, as shields.io's estimate does).
func textWidth(s string) int {
	w := 0.0
	for _, r := range s {
		switch {
		case strings.ContainsRune("il.:|!'", r):
			w += 3.5
		case r == ' ' || strings.ContainsRune("ftjr()[]", r):
			w += 4.5
		case r == '%' || r == 'm' || r == 'w' || r == 'M' || r == 'W':
			w += 10.5
		case r >= 'A' && r <= 'Z':
			w += 8
		default:
			w += 7
		}
	}
	return int(math.Ceil(w))
}

// Badge colours by uptime, as Gatus's.
func uptimeColor(good, total int) string {
	if total == 0 {
		return "#9f9f9f"
	}
	p := float64(good) / float64(total)
	switch {
	case p >= .999:
		return "#40cc11"
	case p >= .99:
		return "#94cc11"
	case p >= .95:
		return "#ccd311"
	case p >= .9:
		return "#ccb311"
	case p >= .8:
		return "#cc8111"
	}
	return "#c7130a"
}

// badgeCache is how long a client or proxy may keep a badge: a README's
// image proxy asks again within a minute.
const badgeCache = "max-age=60"

func (s *server) routeBadges(mux *http.ServeMux) {
	mux.HandleFunc("GET /badges/{flow}/health.svg", s.healthBadge)
	mux.HandleFunc("GET /badges/{flow}/uptime/{window}", s.uptimeBadge)
}

func (s *server) badgeFlow(w http.ResponseWriter, r *http.Request) (string, bool) {
	name := r.PathValue("flow")
	if !slices.ContainsFunc(s.o.Source.Flows(), func(f FlowInfo) bool { return f.Name == name }) {
		text(w, http.StatusNotFound, "no flow named "+strconv.Quote(name)+" is configured")
		return "", false
	}
	return name, true
}

func writeBadge(w http.ResponseWriter, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "image/svg+xml")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", badgeCache)
	// Opened on its own, an SVG is a document: nothing in it may run or load.
	h.Set("Content-Security-Policy", "default-src 'none'")
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

func (s *server) healthBadge(w http.ResponseWriter, r *http.Request) {
	flow, ok := s.badgeFlow(w, r)
	if !ok {
		return
	}
	runs := s.o.Source.Recent(flow, 1)
	if len(runs) == 1 && !runs[0].Final() {
		runs = s.o.Source.Recent(flow, 0)
	}
	value, color := "no data", "#9f9f9f"
	switch stateOf(runs) {
	case statePassing:
		value, color = "up", "#40cc11"
	case stateFailing:
		value, color = "down", "#c7130a"
	}
	writeBadge(w, badge("health", value, color, flow+": "+value))
}

func (s *server) uptimeBadge(w http.ResponseWriter, r *http.Request) {
	win := strings.TrimSuffix(r.PathValue("window"), ".svg")
	i := slices.IndexFunc(uptimeWindows, func(u struct {
		Name string
		W    time.Duration
	}) bool {
		return u.Name == win
	})
	if i < 0 || !strings.HasSuffix(r.PathValue("window"), ".svg") {
		text(w, http.StatusNotFound, "no such badge: the uptime badges are 24h.svg, 7d.svg and 30d.svg")
		return
	}
	flow, ok := s.badgeFlow(w, r)
	if !ok {
		return
	}
	if s.o.History == nil {
		text(w, http.StatusNotFound, "this prober keeps no run history (an evaluator runs no flows)")
		return
	}
	g, n := s.o.History.Uptime(flow, uptimeWindows[i].W, s.now())
	value := percent(g, n)
	title := flow + ": uptime " + win + " " + value + " (" + strconv.Itoa(g) + " of " + strconv.Itoa(n) + " runs passed)"
	if n == 0 {
		value, title = "no data", flow+": no runs in the last "+win
	}
	writeBadge(w, badge("uptime "+win, value, uptimeColor(g, n), title))
}

// badgeLinks are the flow page's badge URLs, for a README.
func badgeLinks(flow string) []string {
	base := "/badges/" + url.PathEscape(flow)
	return []string{base + "/health.svg", base + "/uptime/24h.svg", base + "/uptime/7d.svg", base + "/uptime/30d.svg"}
}
