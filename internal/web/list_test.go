package web

import (
	"fmt"
	"html"
	"maps"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/result"
)

func TestParseListQuery(t *testing.T) {
	tests := []struct {
		query         string
		q             string
		page, perPage int
		keepPerPage   bool
		href2, href1  string // links to pages 2 and 1 with the same filter and size
		lower         string
	}{
		{"", "", 1, 100, false, "/?page=2", "/", ""},
		{"page=3", "", 3, 100, false, "/?page=2", "/", ""},
		{"page=0", "", 1, 100, false, "/?page=2", "/", ""},
		{"page=-2", "", 1, 100, false, "/?page=2", "/", ""},
		{"page=abc", "", 1, 100, false, "/?page=2", "/", ""},
		{"page=2.5", "", 1, 100, false, "/?page=2", "/", ""},
		{"page=", "", 1, 100, false, "/?page=2", "/", ""},
		{"page=99999999999999999999", "", math.MaxInt, 100, false, "/?page=2", "/", ""},
		{"page=-99999999999999999999", "", 1, 100, false, "/?page=2", "/", ""},
		{"per_page=1", "", 1, 1, true, "/?page=2&per_page=1", "/?per_page=1", ""},
		{"per_page=1000", "", 1, 1000, true, "/?page=2&per_page=1000", "/?per_page=1000", ""},
		{"per_page=100", "", 1, 100, false, "/?page=2", "/", ""}, // the default: links need not say it
		{"per_page=0", "", 1, 100, false, "/?page=2", "/", ""},
		{"per_page=1001", "", 1, 100, false, "/?page=2", "/", ""},
		{"per_page=-5", "", 1, 100, false, "/?page=2", "/", ""},
		{"per_page=ten", "", 1, 100, false, "/?page=2", "/", ""},
		{"per_page=1e3", "", 1, 100, false, "/?page=2", "/", ""},
		{"q=Checkout", "Checkout", 1, 100, false, "/?page=2&q=Checkout", "/?q=Checkout", "checkout"},
		{"q=+team%3Dpay+", "team=pay", 1, 100, false, "/?page=2&q=team%3Dpay", "/?q=team%3Dpay", "team=pay"},
		{"q=%20%20", "", 1, 100, false, "/?page=2", "/", ""},
		{"q=a%26b%22%3E%3Cscript%3E&per_page=5&page=7", `a&b"><script>`, 7, 5, true,
			"/?page=2&per_page=5&q=a%26b%22%3E%3Cscript%3E", "/?per_page=5&q=a%26b%22%3E%3Cscript%3E", `a&b"><script>`},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			v, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			lq := parseListQuery(v)
			if lq.q != tt.q || lq.page != tt.page || lq.perPage != tt.perPage || lq.keepPerPage != tt.keepPerPage {
				t.Errorf("got q %q page %d per_page %d keep %v, want %q %d %d %v",
					lq.q, lq.page, lq.perPage, lq.keepPerPage, tt.q, tt.page, tt.perPage, tt.keepPerPage)
			}
			if lq.lower != tt.lower {
				t.Errorf("lower %q, want %q", lq.lower, tt.lower)
			}
			if got := lq.href(2); got != tt.href2 {
				t.Errorf("href(2) = %q, want %q", got, tt.href2)
			}
			if got := lq.href(1); got != tt.href1 {
				t.Errorf("href(1) = %q, want %q", got, tt.href1)
			}
		})
	}
}

func TestPaginate(t *testing.T) {
	tests := []struct {
		n, page, perPage int
		want             window
	}{
		{0, 1, 100, window{1, 1, 0, 0}},
		{0, 5, 100, window{1, 1, 0, 0}},
		{1, 1, 100, window{1, 1, 0, 1}},
		{100, 1, 100, window{1, 1, 0, 100}},
		{101, 1, 100, window{1, 2, 0, 100}},
		{101, 2, 100, window{2, 2, 100, 101}},
		{250, 2, 100, window{2, 3, 100, 200}},
		{250, 3, 100, window{3, 3, 200, 250}},
		{250, 4, 100, window{3, 3, 200, 250}},
		{250, math.MaxInt, 100, window{3, 3, 200, 250}},
		{250, 0, 100, window{1, 3, 0, 100}},
		{250, 250, 1, window{250, 250, 249, 250}},
		{250, 1, 1000, window{1, 1, 0, 250}},
		{10000, 100, 100, window{100, 100, 9900, 10000}},
	}
	for _, tt := range tests {
		if got := paginate(tt.n, tt.page, tt.perPage); got != tt.want {
			t.Errorf("paginate(%d, %d, %d) = %+v, want %+v", tt.n, tt.page, tt.perPage, got, tt.want)
		}
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 7: "7", 999: "999", 1000: "1,000", 10000: "10,000",
		100000: "100,000", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

var listedRE = regexp.MustCompile(`<h2><span class="badge \w+">[A-Z ]+</span> <a href="/flows/([^"]+)">`)

// listed is the flows the status page lists, in order.
func listed(body string) []string {
	var names []string
	for _, m := range listedRE.FindAllStringSubmatch(body, -1) {
		names = append(names, m[1])
	}
	return names
}

// bigOrder is the status page's order of bigSource(n): failing flows (every
// tenth) by name, then the rest by name.
func bigOrder(n int) []string {
	var failing, rest []string
	for i := range n {
		name := fmt.Sprintf("flow-%04d", i)
		if i%10 == 0 {
			failing = append(failing, name)
		} else {
			rest = append(rest, name)
		}
	}
	return append(failing, rest...)
}

func TestStatusPagePaging(t *testing.T) {
	src := bigSource(250) // 25 failing
	order := bigOrder(250)
	h := newHandler(func(o *Options) { o.Source = src })
	tests := []struct {
		target     string
		start, end int    // the slice of order shown
		pager      string // "" = no pager
	}{
		{"/", 0, 100, "flows 1–100 of 250"},
		{"/?page=1", 0, 100, "flows 1–100 of 250"},
		{"/?page=2", 100, 200, "flows 101–200 of 250"},
		{"/?page=3", 200, 250, "flows 201–250 of 250"},
		{"/?page=4", 200, 250, "flows 201–250 of 250"}, // beyond the end: the last page
		{"/?page=99999999999999999999", 200, 250, "flows 201–250 of 250"},
		{"/?page=0", 0, 100, "flows 1–100 of 250"},
		{"/?page=-1", 0, 100, "flows 1–100 of 250"},
		{"/?page=two", 0, 100, "flows 1–100 of 250"},
		{"/?per_page=1000", 0, 250, ""},
		{"/?per_page=250", 0, 250, ""},
		{"/?per_page=249&page=2", 249, 250, "flows 250–250 of 250"},
		{"/?per_page=1001", 0, 100, "flows 1–100 of 250"},
		{"/?per_page=0", 0, 100, "flows 1–100 of 250"},
		{"/?per_page=-3", 0, 100, "flows 1–100 of 250"},
		{"/?per_page=%3Cx%3E&page=%3Cy%3E", 0, 100, "flows 1–100 of 250"},
		{"/?per_page=1", 0, 1, "flows 1–1 of 250"},
		{"/?per_page=1&page=250", 249, 250, "flows 250–250 of 250"},
		// Failing flows sort first across pages: page 3 of 10 ends them.
		{"/?per_page=10&page=3", 20, 30, "flows 21–30 of 250"},
		{"/?per_page=10&page=2", 10, 20, "flows 11–20 of 250"},
		{"/?per_page=7&page=36", 245, 250, "flows 246–250 of 250"},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			res, body := do(t, h, "GET", tt.target)
			if res.StatusCode != 200 {
				t.Fatalf("status %d", res.StatusCode)
			}
			if got, want := listed(body), order[tt.start:tt.end]; !slices.Equal(got, want) {
				t.Errorf("listed %d flows %.80v, want %d %.80v", len(got), got, len(want), want)
			}
			// The headline and title count every flow, whatever the page shows.
			for _, w := range []string{`<h1 class="overall fail">25 of 250 flows failing</h1>`,
				"<title>FAILING · 25 of 250 flows failing · prober</title>", `<form class="find"`} {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			n := strings.Count(body, `<nav class="pager"`)
			switch {
			case tt.pager == "" && n != 0:
				t.Errorf("%d pagers on a single page", n)
			case tt.pager != "" && (n != 2 || strings.Count(body, "<b>"+tt.pager+"</b>") != 2):
				t.Errorf("want the pager %q at the top and bottom; %d pagers", tt.pager, n)
			}
			if tt.pager != "" {
				top, bottom := strings.Index(body, `<nav class="pager"`), strings.LastIndex(body, `<nav class="pager"`)
				first, last := strings.Index(body, `<section class="flow`), strings.LastIndex(body, `</section>`)
				if top > first || bottom < last {
					t.Error("pagers not around the list")
				}
			}
		})
	}
}

func TestStatusPagePagerLinks(t *testing.T) {
	src := bigSource(60)
	// Flows whose description holds a hostile filter, so that it matches
	// and pages: it must reach every link intact, escaped.
	const hostile = `a&b "c" <d>'e'?page=9#x`
	for i := range 3 {
		src.flows[10*i+1].Description = "the " + hostile + " flow"
	}
	h := newHandler(func(o *Options) { o.Source = src })
	tests := []struct {
		target  string
		q       string
		perPage string // "" = not in links
		pages   []int  // first, prev, next, last; 0 = not a link
	}{
		{"/?page=2&per_page=5&q=flow-000", "flow-000", "5", []int{1, 1, 0, 0}},
		{"/?page=1&per_page=3&q=flow-000", "flow-000", "3", []int{0, 0, 2, 4}},
		{"/?page=2&per_page=3&q=FLOW-000", "FLOW-000", "3", []int{1, 1, 3, 4}},
		{"/?page=2", "", "", []int{0, 0, 0, 0}}, // 60 flows: one page
		{"/?page=2&per_page=20", "", "20", []int{1, 1, 3, 3}},
		{"/?page=2&per_page=100&per_page=20", "", "", []int{0, 0, 0, 0}}, // the first value counts
		{"/?page=2&per_page=1&q=" + url.QueryEscape(hostile), hostile, "1", []int{1, 1, 3, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			_, body := do(t, h, "GET", tt.target)
			links := map[string]string{}
			for _, m := range regexp.MustCompile(`<a href="([^"]*)"(?: rel="\w+")?>([^<]+)</a>`).FindAllStringSubmatch(body, -1) {
				links[m[2]] = html.UnescapeString(m[1])
			}
			for i, label := range []string{"« first", "‹ previous", "next ›", "last »"} {
				href, ok := links[label]
				if tt.pages[i] == 0 {
					if ok {
						t.Errorf("%s links to %s", label, href)
					}
					continue
				}
				u, err := url.Parse(href)
				if err != nil || u.Path != "/" {
					t.Fatalf("%s: bad link %q (%v)", label, href, err)
				}
				q := u.Query()
				page := "1"
				if p := q.Get("page"); p != "" {
					page = p
				}
				if page != fmt.Sprint(tt.pages[i]) || q.Get("q") != tt.q || q.Get("per_page") != tt.perPage {
					t.Errorf("%s: %q: page %s q %q per_page %q, want %d %q %q",
						label, href, page, q.Get("q"), q.Get("per_page"), tt.pages[i], tt.q, tt.perPage)
				}
			}
			// The form keeps the filter and the page size, and submits
			// without a page number.
			wantForm := `name="q" value="` + html.EscapeString(tt.q) + `"`
			if !strings.Contains(body, wantForm) {
				t.Errorf("form lacks %s", wantForm)
			}
			hidden := `<input type="hidden" name="per_page" value="` + tt.perPage + `">`
			if strings.Contains(body, hidden) != (tt.perPage != "") {
				t.Errorf("hidden per_page input: want %v (%s)", tt.perPage != "", hidden)
			}
			if strings.Contains(body, `name="page"`) {
				t.Error("the form sends a page number")
			}
			for _, bad := range []string{"<d>", `"c"`, "'e'"} {
				if strings.Contains(body, bad) {
					t.Errorf("page contains unescaped %q", bad)
				}
			}
		})
	}
}

func TestStatusPageFilter(t *testing.T) {
	tests := []struct {
		q       string
		flows   []string // listed, in order
		matches string   // the count line; "" = none
	}{
		{"", []string{"checkout", "search", "browse", "fresh"}, ""},
		{"   ", []string{"checkout", "search", "browse", "fresh"}, ""},
		{"checkout", []string{"checkout"}, `1 of 4 flows matches &#34;checkout&#34;`},
		{"  CHECKout ", []string{"checkout"}, `1 of 4 flows matches &#34;CHECKout&#34;`},
		{"team=pay", []string{"checkout"}, `1 of 4 flows matches &#34;team=pay&#34;`}, // label k=v
		{"=1", []string{"checkout"}, `1 of 4 flows matches &#34;=1&#34;`},
		{"TIER", []string{"checkout"}, ""},                                            // label key
		{"catalogue", []string{"search"}, `1 of 4 flows matches &#34;catalogue&#34;`}, // description
		{"<b>", []string{"search"}, `1 of 4 flows matches &#34;&lt;b&gt;&#34;`},       // label value with markup
		{"minute", []string{"fresh"}, ""},                                             // description of a flow with no runs
		{"e", []string{"checkout", "search", "browse", "fresh"}, `4 of 4 flows match &#34;e&#34;`},
		{"s", []string{"checkout", "search", "browse", "fresh"}, ""},
		{"r", []string{"checkout", "search", "browse", "fresh"}, ""},
		{"ch", []string{"checkout", "search"}, `2 of 4 flows match &#34;ch&#34;`},
		{"nothing-like-this", nil, `0 of 4 flows match &#34;nothing-like-this&#34;`},
		{`"><script>alert(1)</script>`, nil, `0 of 4 flows match &#34;&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&#34;`},
	}
	for _, tt := range tests {
		t.Run(tt.q, func(t *testing.T) {
			res, body := do(t, newHandler(), "GET", "/?q="+url.QueryEscape(tt.q))
			if res.StatusCode != 200 {
				t.Fatalf("status %d", res.StatusCode)
			}
			if got := listed(body); !slices.Equal(got, tt.flows) {
				t.Errorf("listed %v, want %v", got, tt.flows)
			}
			if !strings.Contains(body, "2 of 4 flows failing") {
				t.Error("the headline does not count every flow")
			}
			if tt.matches != "" && !strings.Contains(body, `<p class="matches">`+tt.matches+`</p>`) {
				t.Errorf("page lacks %q", tt.matches)
			}
			filtered := strings.TrimSpace(tt.q) != ""
			if strings.Contains(body, `<p class="matches">`) != filtered {
				t.Errorf("match line shown: %v, want %v", !filtered, filtered)
			}
			if strings.Contains(body, `>show all flows</a>`) != filtered {
				t.Errorf("link to all flows shown: %v, want %v", !filtered, filtered)
			}
			if empty := strings.Contains(body, `<p class="empty">No flow has`); empty != (len(tt.flows) == 0) {
				t.Errorf("empty message shown: %v", empty)
			}
			if b := withoutOwnScript(body); strings.Contains(b, "<script") || strings.Contains(b, "<b>bold") {
				t.Error("page contains unescaped markup")
			}
			if strings.Contains(body, `<nav class="pager"`) {
				t.Error("pager on a single page")
			}
		})
	}
}

// The store decodes every run it returns, so only the flows shown may be
// read in full; the others only for their newest run.
func TestStatusPageReadsOnlyShownFlows(t *testing.T) {
	src := bigSource(250)
	order := bigOrder(250)
	h := newHandler(func(o *Options) { o.Source = src })
	tests := []struct {
		target     string
		start, end int
	}{
		{"/", 0, 100},
		{"/?page=2", 100, 200},
		{"/?page=9", 200, 250},
		{"/?per_page=1000", 0, 250},
		{"/?per_page=3&page=2", 3, 6},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			src.track()
			do(t, h, "GET", tt.target)
			want := map[string]int{}
			for _, name := range order[tt.start:tt.end] {
				want[name] = 1
			}
			if got := src.fullCalls(); !maps.Equal(got, want) {
				t.Errorf("Recent(flow, 0) for %d flows, want the %d shown (%v…)", len(got), len(want), order[tt.start])
			}
			if n := src.recentN.Load(); n != 250 {
				t.Errorf("%d calls of Recent(flow, n > 0), want one per flow (250)", n)
			}
			if n, want := src.returned.Load(), int64(250+30*(tt.end-tt.start)); n != want {
				t.Errorf("%d runs read, want %d", n, want)
			}
		})
	}
	// With a filter, only the matches shown.
	src.track()
	do(t, h, "GET", "/?q=flow-012&per_page=5")
	want := map[string]int{"flow-0120": 1, "flow-0121": 1, "flow-0122": 1, "flow-0123": 1, "flow-0124": 1}
	if got := src.fullCalls(); !maps.Equal(got, want) {
		t.Errorf("filtered: Recent(flow, 0) for %v, want %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
}

// The memoized fragments are those of the page last shown, so they are
// bounded by the page size, not by the number of flows.
func TestStatusPageFragmentsBounded(t *testing.T) {
	order := bigOrder(250)
	s, h := newServer(Options{Source: bigSource(250), Now: func() time.Time { return testNow }})
	tests := []struct {
		target     string
		start, end int
	}{
		{"/", 0, 100},
		{"/?per_page=1000", 0, 250},
		{"/?per_page=7&page=2", 7, 14},
		{"/?page=3", 200, 250},
		{"/?q=flow-0&per_page=1", 0, 1},
		{"/?q=no-such-flow", 0, 0},
		{"/", 0, 100},
	}
	for _, tt := range tests {
		do(t, h, "GET", tt.target)
		got := slices.Sorted(maps.Keys(s.frags.get()))
		want := slices.Sorted(slices.Values(order[tt.start:tt.end]))
		if !slices.Equal(got, want) {
			t.Errorf("%s: %d fragments kept, want the %d shown", tt.target, len(got), len(want))
		}
	}
}

// The filter form submits to the page itself: the status page's CSP allows
// that and nothing more; the other pages keep forms off.
func TestStatusPageCSPAllowsTheForm(t *testing.T) {
	h := newHandler()
	for target, want := range map[string]string{"/": "form-action 'self';", "/?q=x": "form-action 'self';",
		"/flows/checkout": "form-action 'none';", "/runs/" + failTrace: "form-action 'none';",
		"/flows/nope": "form-action 'none';"} {
		res, body := do(t, h, "GET", target)
		csp := res.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, want) || !strings.HasPrefix(csp, "default-src 'none'; style-src 'sha256-") ||
			!strings.HasSuffix(csp, "; frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q, want %s", target, csp, want)
		}
		if strings.Contains(body, "<form") != (want == "form-action 'self';") {
			t.Errorf("%s: form on the page: %v", target, strings.Contains(body, "<form"))
		}
	}
}

func TestStatusPageNoFlows(t *testing.T) {
	_, body := do(t, newHandler(func(o *Options) { o.Source = &fakeSource{} }), "GET", "/?q=x&page=3")
	if !strings.Contains(body, "no flows configured") || strings.Contains(body, "<form") ||
		strings.Contains(body, `<nav class="pager"`) || strings.Contains(body, "<section") {
		t.Errorf("page with no flows:\n%s", body[strings.Index(body, "<main>"):])
	}
}

// copySource returns fresh copies of its runs at every call, as the store
// does (it decodes them): the fragment cache must still hit.
type copySource struct{ *fakeSource }

func (c copySource) Recent(flow string, n int) []*result.Run {
	rs := c.fakeSource.Recent(flow, n)
	out := make([]*result.Run, len(rs))
	for i, r := range rs {
		cp := *r
		out[i] = &cp
	}
	return out
}

func TestStatusPageFragmentsReusedAcrossDecodes(t *testing.T) {
	src := copySource{bigSource(20)}
	s, h := newServer(Options{Source: src, Now: func() time.Time { return testNow }})
	do(t, h, "GET", "/")
	first := maps.Clone(s.frags.get())
	do(t, h, "GET", "/")
	second := s.frags.get()
	if len(first) != 20 || len(second) != 20 {
		t.Fatalf("fragments kept: %d then %d, want 20", len(first), len(second))
	}
	for name, fr := range second {
		if first[name] != fr {
			t.Errorf("%s: fragment rendered again for the same runs", name)
		}
	}
	// A new run invalidates that flow's fragment only.
	name := "flow-0003"
	nr := *src.runs[name][0]
	nr.TraceID, nr.Start = "0af7651916cd43dd8448eb211c80319c", testNow
	src.runs[name] = append([]*result.Run{&nr}, src.runs[name]...)
	do(t, h, "GET", "/")
	for n, fr := range s.frags.get() {
		if (first[n] == fr) == (n == name) {
			t.Errorf("%s: reused %v after a new run of %s", n, first[n] == fr, name)
		}
	}
}

// finalSource is a fakeSource that says how each flow's newest run ended
// without returning it, as the daemon's store does.
type finalSource struct{ *fakeSource }

func (f finalSource) NewestFinal(flow string) (passed, ok bool) {
	rs := f.runs[flow]
	if len(rs) == 0 || !rs[0].Final() {
		return false, false
	}
	return rs[0].OK(), true
}

// With a NewestFinalSource the status page reads the runs of the flows it
// shows only, not every flow's newest (each a run the store decodes), and
// shows the same page.
func TestStatusPageStatesWithoutRuns(t *testing.T) {
	plain := bigSource(250)
	fast := finalSource{bigSource(250)}
	// Some flows with a newest run a retry followed (its state is the
	// run before's), some with none.
	for _, src := range []*fakeSource{plain, fast.fakeSource} {
		for i, f := range src.flows {
			switch {
			case i%7 == 3:
				src.runs[f.Name][0].Retried = true
			case i%50 == 7:
				delete(src.runs, f.Name)
			}
		}
	}
	var notFinal int // flows whose newest run is not final, or that have none
	for _, f := range fast.flows {
		if rs := fast.runs[f.Name]; len(rs) == 0 || !rs[0].Final() {
			notFinal++
		}
	}
	for _, target := range []string{"/", "/?page=2", "/?q=flow-01&per_page=5"} {
		_, want := do(t, newHandler(func(o *Options) { o.Source = plain }), "GET", target)
		fast.track()
		_, got := do(t, newHandler(func(o *Options) { o.Source = fast }), "GET", target)
		if got != want {
			t.Errorf("%s: the page differs from the one read from the runs", target)
		}
		if n := fast.recentN.Load(); n != int64(notFinal) {
			t.Errorf("%s: %d calls of Recent(flow, n > 0), want one per flow whose newest run is not final or that has none (%d)", target, n, notFinal)
		}
	}
}
