package web

import (
	"bytes"
	"encoding/xml"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// fakeHistory answers fixed figures per flow and window.
type fakeHistory struct {
	uptime map[string]map[time.Duration][2]int // flow, window: good, total
	points map[string][]LatencyPoint
}

func (h *fakeHistory) Uptime(flow string, w time.Duration, _ time.Time) (int, int) {
	u := h.uptime[flow][w]
	return u[0], u[1]
}

func (h *fakeHistory) Latency(flow string, from, to time.Time) []LatencyPoint {
	var out []LatencyPoint
	for _, p := range h.points[flow] {
		if !p.Start.Before(from.Truncate(p.Width)) && !p.Start.After(to) {
			out = append(out, p)
		}
	}
	return out
}

const oddFlow = `a<b&"c'`

func newHistory() *fakeHistory {
	day, week, month := 24*time.Hour, 7*24*time.Hour, 30*24*time.Hour
	h := &fakeHistory{
		uptime: map[string]map[time.Duration][2]int{
			"checkout": {day: {1438, 1440}, week: {10070, 10080}, month: {43200, 43200}},
			"browse":   {day: {3, 4}},
			oddFlow:    {day: {1, 1}, week: {1, 1}, month: {1, 1}},
		},
		points: map[string][]LatencyPoint{},
	}
	base := testNow.Truncate(5 * time.Minute)
	for i, d := range []time.Duration{-50, -45, -40, -20, -15} { // a gap between -40 and -20
		h.points["checkout"] = append(h.points["checkout"], LatencyPoint{Start: base.Add(d * time.Minute), Width: 5 * time.Minute,
			Runs: 5, Failed: i % 2, Mean: time.Duration(100+50*i) * time.Millisecond, Max: time.Duration(300+100*i) * time.Millisecond})
	}
	return h
}

func historyHandler() http.Handler {
	src := newFake()
	src.flows = append(src.flows, FlowInfo{Name: oddFlow, Schedule: "every 1m0s"})
	return newHandler(func(o *Options) { o.Source, o.History = src, newHistory() })
}

// wellFormed parses b as XML, failing on any error.
func wellFormed(t *testing.T, what string, b []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		_, err := d.Token()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("%s is not well-formed XML: %v\n%s", what, err, b)
		}
	}
}

func TestPercent(t *testing.T) {
	for _, tc := range []struct {
		good, total int
		want        string
	}{
		{0, 0, ""}, {1, 1, "100.00%"}, {99999, 100000, "99.99%"}, {1, 3, "33.33%"}, {2, 3, "66.66%"}, {0, 5, "0.00%"},
	} {
		if got := percent(tc.good, tc.total); got != tc.want {
			t.Errorf("percent(%d, %d) = %q, want %q", tc.good, tc.total, got, tc.want)
		}
	}
}

func TestLatencySVG(t *testing.T) {
	pts := newHistory().points["checkout"]
	svg := string(latencySVG(pts, testNow))
	wellFormed(t, "the latency graph", []byte(svg))
	for _, bad := range []string{"style=", "<script", "javascript:", "href"} {
		if strings.Contains(svg, bad) {
			t.Errorf("graph holds %q, which the CSP would block or which could run", bad)
		}
	}
	// Two segments (the gap) for each of mean and max; a red mark per
	// bucket with failures (2 of 5); a tooltip per bucket.
	if n := strings.Count(svg, `d="M`); n != 2 {
		t.Errorf("%d paths, want 2", n)
	}
	if n := strings.Count(svg, " M"); n != 2 {
		t.Errorf("%d restarted segments, want 2 (one gap in each line)", n)
	}
	if n := strings.Count(svg, `fill="#b00020"`); n != 2 {
		t.Errorf("%d failure marks, want 2", n)
	}
	if n := strings.Count(svg, "<title>"); n != 5 {
		t.Errorf("%d tooltips, want 5", n)
	}
	if !strings.Contains(svg, "5 runs, mean 150ms, max 400ms, 1 failed") {
		t.Errorf("tooltip of the second bucket missing:\n%s", svg)
	}
	// The axis tops at a round value above the longest run (700ms).
	if !strings.Contains(svg, ">1s</text>") || !strings.Contains(svg, ">500ms</text>") {
		t.Errorf("axis labels missing:\n%s", svg)
	}
	empty := string(latencySVG(nil, testNow))
	wellFormed(t, "an empty graph", []byte(empty))
	if strings.Contains(empty, "<path") || !strings.Contains(empty, "no runs") {
		t.Errorf("empty graph: %s", empty)
	}
}

func TestFlowPageHistory(t *testing.T) {
	h := historyHandler()
	res, body := do(t, h, "GET", "/flows/checkout")
	if res.StatusCode != 200 {
		t.Fatal(res.Status)
	}
	for _, w := range []string{
		`<b>99.86%</b> 24h</span>`, `<b>99.90%</b> 7d</span>`, `<b>100.00%</b> 30d</span>`,
		`title="1438 of 1440 runs passed in the last 24h"`,
		`<svg class="latency"`,
		`<a href="/badges/checkout/uptime/7d.svg">`,
		`uptime 24h 99.86%`,
	} {
		if !strings.Contains(body, w) {
			t.Errorf("flow page lacks %q", w)
		}
	}
	// The page's CSP is unchanged: the graph needs nothing it forbids.
	if csp := res.Header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'none'; style-src 'sha256-") {
		t.Errorf("CSP %q", csp)
	}
	svg := body[strings.Index(body, "<svg"):]
	svg = svg[:strings.Index(svg, "</svg>")+len("</svg>")]
	wellFormed(t, "the inline graph", []byte(svg))

	_, body = do(t, h, "GET", "/flows/fresh")
	if !strings.Contains(body, `<b>no data</b> 24h`) {
		t.Error("a flow without history does not say no data")
	}
	// Without a history, nothing of it shows.
	_, body = do(t, newHandler(), "GET", "/flows/checkout")
	if strings.Contains(body, "<svg") || strings.Contains(body, `class="up `) {
		t.Error("history shown without a history")
	}
}

func TestStatusPageUptime(t *testing.T) {
	_, body := do(t, historyHandler(), "GET", "/")
	for _, w := range []string{`title="3 of 4 runs passed in the last 24h">uptime 24h 75.00%</span>`, `uptime 24h 99.86%`, `uptime 24h no data`} {
		if !strings.Contains(body, w) {
			t.Errorf("status page lacks %q", w)
		}
	}
}

func TestBadges(t *testing.T) {
	h := historyHandler()
	tests := []struct {
		path   string
		code   int
		values []string // texts in the badge
		color  string
	}{
		{"/badges/checkout/uptime/24h.svg", 200, []string{"uptime 24h", "99.86%"}, "#94cc11"},
		{"/badges/checkout/uptime/7d.svg", 200, []string{"uptime 7d", "99.90%"}, "#40cc11"},
		{"/badges/checkout/uptime/30d.svg", 200, []string{"uptime 30d", "100.00%"}, "#40cc11"},
		{"/badges/browse/uptime/24h.svg", 200, []string{"75.00%"}, "#c7130a"},
		{"/badges/fresh/uptime/7d.svg", 200, []string{"no data"}, "#9f9f9f"},
		{"/badges/checkout/health.svg", 200, []string{"health", "down"}, "#c7130a"},
		{"/badges/browse/health.svg", 200, []string{"health", "up"}, "#40cc11"},
		{"/badges/fresh/health.svg", 200, []string{"no data"}, "#9f9f9f"},
		{"/badges/nope/health.svg", 404, nil, ""},
		{"/badges/nope/uptime/7d.svg", 404, nil, ""},
		{"/badges/checkout/uptime/1y.svg", 404, nil, ""},
		{"/badges/checkout/uptime/7d", 404, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			res, body := do(t, h, "GET", tc.path)
			if res.StatusCode != tc.code {
				t.Fatalf("%s: %d, want %d", tc.path, res.StatusCode, tc.code)
			}
			if tc.code != 200 {
				return
			}
			if ct := res.Header.Get("Content-Type"); ct != "image/svg+xml" {
				t.Errorf("Content-Type %q", ct)
			}
			if cc := res.Header.Get("Cache-Control"); cc != "max-age=60" {
				t.Errorf("Cache-Control %q", cc)
			}
			if csp := res.Header.Get("Content-Security-Policy"); csp != "default-src 'none'" {
				t.Errorf("CSP %q", csp)
			}
			wellFormed(t, tc.path, []byte(body))
			for _, v := range tc.values {
				if !strings.Contains(body, ">"+v+"</text>") {
					t.Errorf("badge lacks %q:\n%s", v, body)
				}
			}
			if !strings.Contains(body, `fill="`+tc.color+`"`) {
				t.Errorf("badge is not %s:\n%s", tc.color, body)
			}
		})
	}
	// A flow name with markup is escaped in the badge's title.
	res, body := do(t, h, "GET", "/badges/"+strings.ReplaceAll(strings.ReplaceAll(oddFlow, "<", "%3C"), `"`, "%22")+"/uptime/7d.svg")
	if res.StatusCode != 200 {
		t.Fatalf("odd flow: %s %s", res.Status, body)
	}
	wellFormed(t, "the odd flow's badge", []byte(body))
	if strings.Contains(body, oddFlow) || !strings.Contains(body, "a&lt;b&amp;&#34;c&#39;: uptime 7d 100.00%") {
		t.Errorf("flow name not escaped:\n%s", body)
	}
	// Without a history there are no uptime badges; health still works.
	if res, _ := do(t, newHandler(), "GET", "/badges/checkout/uptime/7d.svg"); res.StatusCode != 404 {
		t.Errorf("uptime badge without history: %d", res.StatusCode)
	}
	if res, _ := do(t, newHandler(), "GET", "/badges/checkout/health.svg"); res.StatusCode != 200 {
		t.Errorf("health badge without history: %d", res.StatusCode)
	}
}
