package web

import (
	"cmp"
	"context"
	"fmt"
	"html/template"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prober-dev/prober/internal/result"
)

// The templates only print: every decision (state, ordering, wording) is made
// here, in Go, where it is testable and cheap.

// stripRuns is how many recent runs the status page shows as boxes.
const stripRuns = 30

type state struct {
	API   string // passing, failing, no_data
	Badge string // PASSING, FAILING, NO DATA
	CSS   string // pass, fail, nodata
}

var (
	statePassing = state{"passing", "PASSING", "pass"}
	stateFailing = state{"failing", "FAILING", "fail"}
	stateNoData  = state{"no_data", "NO DATA", "nodata"}
)

// stateOf is the state of a flow given its runs, newest first: that of the
// latest final run, as the rules read it (a failed run whose confirming
// retry is still going is not yet the flow's state), or of the latest run
// when none is final.
func stateOf(runs []*result.Run) state {
	if len(runs) == 0 {
		return stateNoData
	}
	if latestFinal(runs).OK() {
		return statePassing
	}
	return stateFailing
}

// latestFinal is the newest final run of runs (newest first, not empty), or
// the newest run when none is final.
func latestFinal(runs []*result.Run) *result.Run {
	for _, r := range runs {
		if r.Final() {
			return r
		}
	}
	return runs[0]
}

// retryMark says how a run stands among the attempts of its schedule slot:
// an immediate retry confirming an earlier run's failure, a failed run a
// retry superseded, or both (the first of two retries). Each part links to
// the other run's page when it is known.
type retryMark []retryPart

type retryPart struct {
	Text, Href string
}

func (m retryMark) String() string {
	texts := make([]string, len(m))
	for i, p := range m {
		texts[i] = p.Text
	}
	return strings.Join(texts, ", ")
}

// markRetry is r's retry mark, finding the run that superseded r among
// runs (any order); nil for a run that is neither.
func markRetry(r *result.Run, runs []*result.Run) retryMark {
	var m retryMark
	if r.Retry > 0 {
		p := retryPart{Text: "retry " + strconv.Itoa(r.Retry) + " confirming a failure"}
		if r.RetryOf != "" {
			p = retryPart{"retry " + strconv.Itoa(r.Retry) + " of run " + short(r.RetryOf), "/runs/" + url.PathEscape(r.RetryOf) + flowHint(r.Flow)}
		}
		m = append(m, p)
	}
	if r.Retried {
		p := retryPart{Text: "superseded by its retry (not counted)"}
		for _, x := range runs {
			if x.RetryOf == r.TraceID && r.TraceID != "" {
				p = retryPart{"superseded by retry " + strconv.Itoa(x.Retry) + ", run " + short(x.TraceID) + " (not counted)",
					"/runs/" + url.PathEscape(x.TraceID) + flowHint(x.Flow)}
				break
			}
		}
		m = append(m, p)
	}
	return m
}

type page struct {
	Title, Region, Version, Now string
	Refresh                     bool
	// Banner is a failed reload (Options.ReloadFailure), atop every page.
	Banner string
	// Behind is the scheduler's backlog (Options.Behind), atop every page:
	// the figures on the page are older than their schedules say.
	Behind string
	Series int // the footer's count, 0: not shown
}

type flowView struct {
	Name, Href, Description, Schedule, File string
	Labels                                  []string // "k=v", sorted
	State                                   state
	Since                                   string // "failing since … (3m ago, 4 runs)"
	Ratio                                   string // "98.0% of the last 50 runs passed, over 50m"
	Strip                                   []box  // oldest first, newest at the right
	StripLabel                              string
	Last                                    *runView // nil when no data
	Config                                  []StepInfo
	Runs                                    []*runView // detail page: all kept, newest first
	// From the run history (Options.History), when there is one.
	Uptime24 *uptimeView   // the status page's figure
	Uptime   []uptimeView  // detail page: 24h, 7d, 30d
	Latency  template.HTML // detail page: the last day's graph (latencySVG)
	Badges   []string      // detail page: the badges' paths
	// Detail page: uptime per region (Options.Regions), when there is one.
	Regions *regionUptimeView
}

// box is one run in the strip. The template builds its link as
// /runs/{{.ID}}: a fixed prefix saves html/template a URL filter call per
// box, which matters at 30 boxes × 1,000 flows.
type box struct {
	OK         bool
	Superseded bool   // a failed run its immediate retry superseded
	ID, Title  string // ID is the path-escaped trace id
}

type runView struct {
	Flow, FlowHref     string
	OK                 bool
	Badge, BadgeCSS    string // PASSED pass, FAILED fail
	Status, Class      string
	Href               string // the run detail page
	TraceID, TraceHref string // TraceHref: log search, "" when not configured
	TraceViewHref      string // the tracing backend's view of the trace, "" when not configured
	RunID, RunRegion   string
	Started, Ago, Took string
	Planned, Late      string
	Labels             []string
	Summarized         bool      // kept without its steps (see result.Run)
	Retry              retryMark // nil: neither a retry nor retried
	Story              *story
	Steps              []stepView
	Failures           []stepFailures
}

type story struct {
	Step, Message, Class, TraceID string
}

type stepView struct {
	Name, Dependency string
	Cleanup          bool
	StatusText       string // "✗ failed (2 attempts)": a mark, so not by colour alone
	StatusClass      string // pass, fail, skip
	HTTP             string
	Duration         string
	Class            string
	Message          string
	More             int // further failures beyond Message
	SpanID           string
	Method, URL      string
	Attrs            []result.Attr // a step kind's own part (tls: the certificate's dates)
	Offset           string        // start relative to the run's start
	Body             string
	Ran              bool
	Reused           bool
	DNS, Connect     string
	TLS, Processing  string
	Transfer, First  string
}

type stepFailures struct {
	Step     string
	Failures []result.Failure
	Response *responseView // what the server answered, when the step kept it
	Shot     *shotView     // the page a failed browser step left
}

// shotView is a failed browser step's screenshot, with the page's last
// title and URL (the step's attrs).
type shotView struct {
	Step, Title, URL string
	Src              string // "" when the store no longer has the bytes
	Width, Height    int
	Size             string
}

type errorView struct {
	page
	Heading, Message string
}

func (s *server) page(title string, refresh bool) page {
	return page{Title: title, Region: s.o.Region, Version: s.o.Version,
		Now: absTime(s.now()), Refresh: refresh, Banner: s.reloadFailure(), Behind: s.behind(), Series: s.series()}
}

func (s *server) series() int {
	if s.o.Series == nil {
		return 0
	}
	return s.o.Series()
}

func (s *server) errorView(heading, msg string) errorView {
	return errorView{page: s.page(heading+" · prober", false), Heading: heading, Message: msg}
}

// flowSummary is the top of a flow's block: name, state, since, ratio, and
// the last run's headline (no steps). runs are all kept runs, newest first.
func (s *server) flowSummary(fi *FlowInfo, runs []*result.Run, now time.Time) *flowView {
	fv := &flowView{Name: fi.Name, Href: "/flows/" + url.PathEscape(fi.Name),
		Description: fi.Description, Schedule: fi.Schedule, File: fi.File,
		Labels: labelList(fi.Labels), State: stateOf(runs)}
	if s.o.History != nil {
		u := s.uptime(fi.Name, "24h", 24*time.Hour, now)
		fv.Uptime24 = &u
	}
	if len(runs) == 0 {
		fv.Since = "waiting for the first run"
		return fv
	}

	// Final runs only, as the rules count them: a failed run that an
	// immediate retry followed is an attempt of the same slot, not a run
	// of its own.
	finals := make([]*result.Run, 0, len(runs))
	for _, r := range runs {
		if r.Final() {
			finals = append(finals, r)
		}
	}
	if len(finals) == 0 { // the first run failed and its retry is going
		finals = runs[:1]
	}

	// Since: the start of the oldest run in the streak that shares the latest
	// run's outcome (its slot's first attempt). If the streak spans every
	// kept run, it began earlier.
	ok := finals[0].OK()
	streak := 1
	for streak < len(finals) && finals[streak].OK() == ok {
		streak++
	}
	first := finals[streak-1]
	if i := slices.Index(runs, first); i >= 0 {
		for i+1 < len(runs) && runs[i+1].Retried { // the attempts it confirmed
			i++
		}
		first = runs[i]
	}
	word := strings.ToLower(fv.State.Badge)
	switch {
	case streak < len(finals):
		fv.Since = fmt.Sprintf("%s since %s (%s, %d %s)", word, absTime(first.Start), ago(now, first.Start),
			streak, plural(streak, "run", "runs"))
	case streak == 1:
		fv.Since = fmt.Sprintf("%s since at least %s (%s, the only kept run)", word, absTime(first.Start), ago(now, first.Start))
	default:
		fv.Since = fmt.Sprintf("%s since at least %s (%s, all %d kept runs)", word, absTime(first.Start), ago(now, first.Start), streak)
	}

	passed := 0
	for _, r := range finals {
		if r.OK() {
			passed++
		}
	}
	fv.Ratio = fmt.Sprintf("%.1f%% of the last %d %s passed, over %s", 100*float64(passed)/float64(len(finals)),
		len(finals), plural(len(finals), "run", "runs"), strings.TrimSuffix(ago(now, finals[len(finals)-1].Start), " ago"))
	if len(finals) < len(runs) {
		fv.Ratio += " (a failure retried at once counts once)"
	}
	fv.Last = s.runHead(finals[0], now)
	fv.Last.Retry = markRetry(finals[0], nil)
	return fv
}

// addStrip fills the strip of boxes for the newest stripRuns runs.
func addStrip(fv *flowView, runs []*result.Run) {
	strip := runs[:min(len(runs), stripRuns)]
	fv.Strip = make([]box, len(strip))
	for i, r := range strip {
		b := box{OK: r.OK(), Superseded: r.Retried, ID: url.PathEscape(r.TraceID) + flowHint(r.Flow)}
		var t strings.Builder
		t.WriteString(absTime(r.Start))
		t.WriteString(" · ")
		t.WriteString(result.Round(r.Duration).String())
		if b.OK {
			t.WriteString(" · passed")
		} else {
			t.WriteString(" · failed")
			if r.FailedStep != "" {
				t.WriteString(" at ")
				t.WriteString(r.FailedStep)
			}
			t.WriteString(" (")
			t.WriteString(string(r.Class))
			t.WriteString(")")
		}
		if m := markRetry(r, runs); m != nil {
			t.WriteString(" · ")
			t.WriteString(m.String())
		}
		b.Title = t.String()
		fv.Strip[len(strip)-1-i] = b // oldest at the left, like a timeline
	}
	superseded := 0
	for _, b := range fv.Strip {
		if b.Superseded {
			superseded++
		}
	}
	n := len(strip) - superseded
	fv.StripLabel = fmt.Sprintf("last %d %s, oldest first", n, plural(n, "run", "runs"))
	if superseded > 0 {
		fv.StripLabel = fmt.Sprintf("last %d %s and %d superseded %s, oldest first", n, plural(n, "run", "runs"),
			superseded, plural(superseded, "attempt", "attempts"))
	}
}

func (s *server) flowView(ctx context.Context, name string) (*flowPageView, bool) {
	infos := s.o.Source.Flows()
	i := slices.IndexFunc(infos, func(f FlowInfo) bool { return f.Name == name })
	if i < 0 {
		return nil, false
	}
	now := s.now()
	runs := s.o.Source.Recent(name, 0)
	fv := s.flowSummary(&infos[i], runs, now)
	addStrip(fv, runs)
	fv.Config = infos[i].Steps
	if s.o.History != nil {
		fv.Uptime = s.uptimes(name, now)
		fv.Latency = latencySVG(s.o.History.Latency(name, now.Add(-graphSpan), now), now)
		fv.Badges = badgeLinks(name)
	}
	if s.o.Regions != nil {
		fv.Regions = s.regionUptime(ctx, name)
	}
	fv.Runs = make([]*runView, len(runs))
	for j, r := range runs {
		fv.Runs[j] = s.run(r, now)
		fv.Runs[j].Retry = markRetry(r, runs)
	}
	return &flowPageView{page: s.page(fv.Name+" · prober", true), flowView: fv}, true
}

// flowPageView wraps a flowView with the page header.
type flowPageView struct {
	page
	*flowView
}

type runPageView struct {
	page
	*runView
}

// runView finds the run of traceID: in flow's runs first when the link
// said which (hint), then in every flow's.
func (s *server) runView(traceID, hint string) (*runPageView, bool) {
	if traceID == "" {
		return nil, false
	}
	find := func(flow string) (*runPageView, bool) {
		runs := s.o.Source.Recent(flow, 0)
		for _, r := range runs {
			if r.TraceID == traceID {
				v := s.run(r, s.now())
				v.Retry = markRetry(r, runs)
				return &runPageView{page: s.page(r.Flow+" run "+short(traceID)+" · prober", false), runView: v}, true
			}
		}
		return nil, false
	}
	if hint != "" {
		if v, ok := find(hint); ok {
			return v, true
		}
	}
	for _, f := range s.o.Source.Flows() {
		if f.Name == hint {
			continue
		}
		if v, ok := find(f.Name); ok {
			return v, true
		}
	}
	return nil, false
}

// run is the view of one run: everything any page shows about it.
func (s *server) run(r *result.Run, now time.Time) *runView {
	v := s.runHead(r, now)
	s.addSteps(v, r)
	return v
}

// runHead is a run's view without its steps.
func (s *server) runHead(r *result.Run, now time.Time) *runView {
	v := &runView{Flow: r.Flow, FlowHref: "/flows/" + url.PathEscape(r.Flow), OK: r.OK(),
		Status: string(r.Status), Class: string(r.Class), Href: runHref(r),
		TraceID: r.TraceID, TraceHref: s.logHref(r.TraceID), TraceViewHref: s.traceHref(r.TraceID), RunID: r.ID, RunRegion: r.Region,
		Started: absTime(r.Start), Ago: ago(now, r.Start), Took: result.Round(r.Duration).String(),
		Labels: labelList(r.Labels), Summarized: r.Summarized}
	v.Badge, v.BadgeCSS = "PASSED", "pass"
	if !v.OK {
		v.Badge, v.BadgeCSS = "FAILED", "fail"
	}
	if !r.Planned.IsZero() {
		v.Planned = absTime(r.Planned)
		if late := r.Start.Sub(r.Planned); late >= time.Millisecond {
			v.Late = result.Round(late).String()
		}
	}
	if !v.OK {
		st := &story{Class: string(r.Class), TraceID: r.TraceID}
		if f := r.Failed(); f != nil {
			st.Step, st.Message, st.Class = f.Name, f.Message(), string(f.Class)
		} else {
			st.Step = r.FailedStep
		}
		v.Story = st
	}
	return v
}

func (s *server) addSteps(v *runView, r *result.Run) {
	v.Steps = make([]stepView, len(r.Steps))
	for i := range r.Steps {
		st := &r.Steps[i]
		sv := stepView{Name: st.Name, Dependency: st.Dependency, Cleanup: st.Cleanup,
			StatusText: string(st.Status), Class: string(st.Class),
			Message: st.Message(), SpanID: st.SpanID, Method: st.Method, URL: st.URL, Attrs: st.Attrs,
			Ran: st.Status != result.Skipped}
		switch st.Status {
		case result.Passed:
			sv.StatusClass, sv.StatusText = "pass", "✓ "+sv.StatusText
		case result.Failed:
			sv.StatusClass, sv.StatusText = "fail", "✗ "+sv.StatusText
		default:
			sv.StatusClass, sv.StatusText = "skip", "– "+sv.StatusText
			sv.Class = "" // a skipped step has no outcome to classify
		}
		switch {
		case st.Retries > 0: // the step's retry: at work, told from until's polls
			sv.StatusText += " (" + strconv.Itoa(st.Attempts) + " attempts, " + strconv.Itoa(st.Retries) + " " + plural(st.Retries, "retry", "retries") + ")"
		case st.Attempts > 1:
			sv.StatusText += " (" + strconv.Itoa(st.Attempts) + " attempts)"
		}
		if len(st.Failures) > 0 {
			sv.More = len(st.Failures) - 1
			v.Failures = append(v.Failures, stepFailures{st.Name, st.Failures, responseOf(st), s.shotOf(r, st)})
		}
		if st.HTTPStatus != 0 {
			sv.HTTP = strconv.Itoa(st.HTTPStatus)
		}
		if sv.Ran {
			sv.Duration = result.Round(st.Duration).String()
			if !st.Start.IsZero() && !r.Start.IsZero() {
				sv.Offset = "+" + result.Round(st.Start.Sub(r.Start)).String()
			}
			sv.Body = bytesText(st.BodyBytes)
			t := st.Timings
			sv.Reused = t.Reused
			sv.DNS, sv.Connect, sv.TLS = phase(t.DNS), phase(t.Connect), phase(t.TLS)
			sv.Processing, sv.Transfer, sv.First = phase(t.Processing), phase(t.Transfer), phase(t.FirstByte)
		}
		v.Steps[i] = sv
	}
}

func runHref(r *result.Run) string {
	if r.TraceID == "" {
		return ""
	}
	return runPath(r) + flowHint(r.Flow)
}

// runPath is a run's page without the flow hint: where its screenshots hang.
func runPath(r *result.Run) string { return "/runs/" + url.PathEscape(r.TraceID) }

// flowHint is the ?flow= a run's link carries, so that its page looks in
// that flow's runs first: older runs are read from the history on disk,
// and every flow's at 10,000 flows is seconds of reads (runView).
func flowHint(flow string) string {
	if flow == "" {
		return ""
	}
	return "?flow=" + url.QueryEscape(flow)
}

func (s *server) logHref(traceID string) string {
	if s.o.LogSearchURL == "" || traceID == "" {
		return ""
	}
	return strings.ReplaceAll(s.o.LogSearchURL, "{trace_id}", url.QueryEscape(traceID))
}

func (s *server) traceHref(traceID string) string {
	if s.o.TraceURL == nil || traceID == "" {
		return ""
	}
	u := s.o.TraceURL()
	if u == "" {
		return ""
	}
	return strings.ReplaceAll(u, "{trace_id}", url.QueryEscape(traceID))
}

func labelList(m map[string]string) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	slices.SortFunc(out, cmp.Compare)
	return out
}

const timeLayout = "2006-01-02 15:04:05 UTC"

func absTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format(timeLayout)
}

// ago is a coarse relative time with at most two units: "12s ago",
// "3m05s ago", "2h10m ago", "3d4h ago".
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	if d < 0 {
		return "in the future (clock skew?)"
	}
	if d < time.Second {
		return "just now"
	}
	sec := int64(d / time.Second)
	switch {
	case sec < 60:
		return fmt.Sprintf("%ds ago", sec)
	case sec < 3600:
		return fmt.Sprintf("%dm%02ds ago", sec/60, sec%60)
	case sec < 86400:
		return fmt.Sprintf("%dh%02dm ago", sec/3600, sec%3600/60)
	default:
		return fmt.Sprintf("%dd%dh ago", sec/86400, sec%86400/3600)
	}
}

// phase prints one timing phase; zero is shown as a dash since most zeros mean
// "did not happen" (reused connection, plain HTTP, no response).
func phase(d time.Duration) string {
	if d == 0 {
		return "—"
	}
	return result.Round(d).String()
}

func bytesText(n int64) string {
	switch {
	case n < 1024:
		return strconv.FormatInt(n, 10) + " B"
	case n < 1<<20:
		return strconv.FormatFloat(float64(n)/1024, 'f', 1, 64) + " KiB"
	default:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
	}
}

func short(traceID string) string {
	if len(traceID) > 8 {
		return traceID[:8]
	}
	return traceID
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// shotOf is st's screenshot's view, nil when it has none. The image is
// linked only while the store has its bytes.
func (s *server) shotOf(r *result.Run, st *result.Step) *shotView {
	sh := st.Screenshot
	if sh == nil {
		return nil
	}
	v := &shotView{Step: st.Name, Title: st.Attr("title"), URL: st.Attr("url"),
		Width: sh.Width, Height: sh.Height, Size: bytesText(int64(sh.Bytes))}
	if s.o.Screenshots != nil && r.TraceID != "" && st.SpanID != "" {
		if _, ok := s.o.Screenshots(r.TraceID, st.SpanID); ok {
			v.Src = runPath(r) + "/screenshots/" + url.PathEscape(st.SpanID)
		}
	}
	// Shown at most at half a laptop's width; the link opens it whole.
	if v.Width > 640 {
		v.Height = v.Height * 640 / v.Width
		v.Width = 640
	}
	return v
}
