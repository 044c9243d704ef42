// Package web serves the prober's HTTP surface: the status page SREs read when
// paged, per-flow and per-run detail pages, a JSON results API, health and
// readiness probes, and /metrics. Pages are server-rendered HTML built from a
// Source on every request; they work without JavaScript, and one small
// script (refresh.js) only refreshes them in place.
package web

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/prober-dev/prober/internal/result"
)

// FlowInfo describes a configured flow for display.
type FlowInfo struct {
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	File        string            `json:"file,omitempty"`
	Schedule    string            `json:"schedule"` // human text: "every 1m0s" or "cron */5 * * * * (UTC)"
	Labels      map[string]string `json:"labels,omitempty"`
	Steps       []StepInfo        `json:"steps"`
}

// StepInfo describes a configured step. URL is the template source text, like
// "{{shop_url}}/api/login".
type StepInfo struct {
	Name       string `json:"name"`
	Method     string `json:"method"`
	URL        string `json:"url"`
	Dependency string `json:"dependency,omitempty"`
	Cleanup    bool   `json:"cleanup,omitempty"`
}

// Source is what the pages read; the daemon implements it over its config and
// store. Implementations must be safe for concurrent use; the web package
// never modifies what they return.
type Source interface {
	// Flows lists the configured flows, in config order.
	Flows() []FlowInfo
	// Recent returns up to n runs of flow, newest first; n <= 0 means all
	// kept. Runs must not change once returned (the store's runs never do):
	// the status page reuses what it rendered for a run.
	Recent(flow string, n int) []*result.Run
}

// NewestFinalSource is a Source that can say how a flow's newest run
// ended without returning the run (the daemon's store reads it from the
// run's encoding). The status page, which needs every flow's state for
// its headline and order but the runs of only the flows it shows, asks
// it when the Source has it: at 10,000 flows, decoding every newest run
// was 18 MB of garbage a view.
type NewestFinalSource interface {
	// NewestFinal says whether flow's newest run passed; ok is false
	// when there is none or it is not final (the page then reads the
	// runs).
	NewestFinal(flow string) (passed, ok bool)
}

// Options configure the handler.
type Options struct {
	Region, Version string
	Source          Source
	// Metrics is served at /metrics (the daemon passes promhttp with
	// OpenMetrics on); nil means /metrics is 404.
	Metrics http.Handler
	// Ready reports readiness: nil error = ready; otherwise /readyz answers 503
	// with the error text. Nil Ready means always ready.
	Ready func() error
	// ReloadFailure says why the last configuration reload failed, for a
	// banner on every page and a note in /readyz; "" when it succeeded (or
	// none was tried). Nil means never.
	ReloadFailure func() string
	// Behind says how the prober is behind its schedule (runs skipped in
	// the last minute because the previous run of the flow was still
	// going), for a banner on every page; "" when it keeps up.
	Behind func() string
	// Series is how many series the flows export (the footer's count); optional.
	Series func() int
	// Now is the clock; default time.Now (tests fix it).
	Now func() time.Time
	// LogSearchURL optionally links trace ids to a log search: "{trace_id}" is
	// replaced by the (query-escaped) trace id, e.g.
	// "https://logs.example/search?q=trace_id%3D{trace_id}".
	LogSearchURL string
	// TraceURL optionally links trace ids to a tracing backend's view of
	// the trace (alerting.links.trace, so it follows reloads): "{trace_id}"
	// is replaced, e.g. "http://jaeger:16686/trace/{trace_id}". Nil or ""
	// means no link.
	TraceURL func() string
	// Alerts is the alerting state (nil without rules): the status page
	// shows it, /api/v1/alerts and /api/v1/silences serve it.
	Alerts Alerts
	// History is the durable run history (nil: none): uptime on the
	// status and flow pages, the flow page's latency graph, and the
	// /badges/ endpoints.
	History History
	// Regions is the uptime per region (nil: none), for the evaluate
	// role, whose regions' results are in Prometheus: a table on the flow
	// page, each flow's figures asked at most once a minute.
	Regions RegionUptimes
	// Screenshots returns the PNG of a failed browser step (by the run's
	// trace id and the step's span id) while the store keeps it; nil:
	// none are served.
	Screenshots func(traceID, spanID string) ([]byte, bool)
	// APIToken, when set, is required (as a bearer token) to change
	// silences; without it only loopback clients may.
	APIToken string
}

// Limits of the results API.
const (
	defaultLimit = 1
	maxLimit     = 1000
)

type server struct {
	o       Options
	pages   *pages
	frags   fragCache   // status page fragments, see status.go
	bufs    bufList     // page and JSON buffers for reuse
	regions regionCache // Options.Regions' answers, see regions.go
}

// New returns the handler for all of the prober's endpoints:
//
//	GET /                      status page (HTML; ?q=FILTER&page=N&per_page=N)
//	GET /flows/{name}          a flow's steps and kept runs (HTML)
//	GET /runs/{trace_id}       one kept run (HTML); ?flow= says where to look first
//	GET /runs/{trace_id}/screenshots/{span_id}   a failed browser step's screenshot (PNG)
//	GET /api/v1/results        latest runs as JSON (?flow=NAME&limit=N)
//	GET /api/v1/flows          configured flows as JSON
//	GET /alerts                alerts and silences (HTML; silences.js changes silences through the API)
//	GET /badges/{flow}/health.svg, /badges/{flow}/uptime/{24h,7d,30d}.svg   SVG badges (history.go)
//	GET /healthz, /readyz      liveness, readiness
//	GET /metrics               Options.Metrics
//	GET, POST /api/v1/silences, DELETE /api/v1/silences/{id}   see alerts.go
//
// State-changing requests (any method but GET, HEAD and OPTIONS) are
// refused when cross-origin (403) or not JSON (415): see admit.
//
// Templates are parsed here, once; a parse error is a programming error and
// panics.
func New(o Options) http.Handler {
	_, h := newServer(o)
	return h
}

// newServer is New that also returns the server, for tests to look inside.
func newServer(o Options) (*server, http.Handler) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Source == nil {
		o.Source = emptySource{}
	}
	s := &server{o: o, pages: mustParsePages(), bufs: make(bufList, 64)}

	// Method-qualified patterns: the mux answers 405 with Allow for other
	// methods on these paths, 404 for any other path, and GET covers HEAD.
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.statusPage)
	mux.HandleFunc("GET /flows/{name}", s.flowPage)
	mux.HandleFunc("GET /runs/{trace_id}", s.runPage)
	mux.HandleFunc("GET /runs/{trace_id}/screenshots/{span_id}", s.screenshot)
	mux.HandleFunc("GET /api/v1/results", s.apiResults)
	mux.HandleFunc("GET /api/v1/flows", s.apiFlows)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		text(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	// Browsers ask for /favicon.ico on every page: a 404 there is an error
	// in their console (and in the e2e page tests, which allow none).
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "image/svg+xml")
		w.Header().Set("Cache-Control", "public, max-age=86400")
		_, _ = w.Write(favicon)
	})
	s.routeAlerts(mux)
	s.routeBadges(mux)
	if o.Metrics != nil {
		mux.Handle("GET /metrics", o.Metrics)
	}
	cop := http.NewCrossOriginProtection()
	// nosniff on everything, including the mux's own 404 and 405 answers.
	return s, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if !s.admit(w, r, mux, cop) {
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// admit refuses state-changing requests that a page on another site could
// have made a browser send (CSRF): a browser holding the prober's basic-auth
// credentials, or simply running on its host (silences may be changed from
// loopback), would otherwise silence pages for any page it visits.
//
// Every request with a method other than GET, HEAD and OPTIONS, on any
// path, so that an endpoint added later is covered too:
//   - cross-origin browser requests are refused with 403, by
//     http.CrossOriginProtection: Sec-Fetch-Site other than same-origin or
//     none, or else an Origin whose host is not the request's Host. Requests
//     with neither header (curl, scripts) are not from a browser and pass;
//   - a routed one must send its body as application/json, else 415. A page
//     can send a cross-site form or a "simple" fetch (text/plain,
//     form-urlencoded, multipart) without asking, but JSON only after a CORS
//     preflight, which the prober never answers: this holds even for browsers
//     too old to send Sec-Fetch-Site. A DELETE may come without a body and
//     so without a type. Requests the mux answers 404 or 405 keep those codes.
func (s *server) admit(w http.ResponseWriter, r *http.Request, mux *http.ServeMux, cop *http.CrossOriginProtection) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	if err := cop.Check(r); err != nil {
		s.apiErr(w, http.StatusForbidden, "cross-origin request refused ("+err.Error()+
			"): state-changing requests are accepted from the prober's own pages and from clients that are not browsers (curl, scripts)")
		return false
	}
	if _, pattern := mux.Handler(r); pattern == "" {
		return true
	}
	if err := jsonContent(r); err != nil {
		s.apiErr(w, http.StatusUnsupportedMediaType, err.Error())
		return false
	}
	return true
}

// jsonContent checks that a state-changing request's body is declared
// application/json (parameters such as charset are allowed).
func jsonContent(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		if r.Method == http.MethodDelete && r.ContentLength == 0 {
			return nil
		}
		return fmt.Errorf("%s %s needs Content-Type: application/json", r.Method, r.URL.Path)
	}
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
		return fmt.Errorf("%s %s accepts only Content-Type: application/json, got %q", r.Method, r.URL.Path, ct)
	}
	return nil
}

type emptySource struct{}

func (emptySource) Flows() []FlowInfo                { return nil }
func (emptySource) Recent(string, int) []*result.Run { return nil }
func (s *server) now() time.Time                     { return s.o.Now().UTC() }
func text(w http.ResponseWriter, code int, msg string) {
	writeBody(w, code, "text/plain; charset=utf-8", []byte(msg))
}

// readyz answers 503 when not ready. A failed reload is a note in a 200
// answer ("ready, configuration reload failed ..."), not a 503: the prober
// keeps probing and alerting with the previous configuration, and taking it
// out of service would stop that without fixing the file.
func (s *server) readyz(w http.ResponseWriter, _ *http.Request) {
	if s.o.Ready != nil {
		if err := s.o.Ready(); err != nil {
			text(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
			return
		}
	}
	if note := s.reloadFailure(); note != "" {
		text(w, http.StatusOK, "ready, "+note)
		return
	}
	text(w, http.StatusOK, "ready")
}

func (s *server) behind() string {
	if s.o.Behind == nil {
		return ""
	}
	return s.o.Behind()
}

func (s *server) reloadFailure() string {
	if s.o.ReloadFailure == nil {
		return ""
	}
	return s.o.ReloadFailure()
}

func writeBody(w http.ResponseWriter, code int, ctype string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store") // everything here is live state
	w.WriteHeader(code)
	w.Write(body)
}

// Pages render into buffers first so that a template error never leaves half
// a page. The buffers are reused through a small free list, one per server,
// rather than a sync.Pool: a big status page makes enough garbage to trigger
// GCs, which empty a Pool on every request.
type bufList chan *bytes.Buffer

func (l bufList) get() *bytes.Buffer {
	select {
	case b := <-l:
		b.Reset()
		return b
	default:
		return new(bytes.Buffer)
	}
}

func (l bufList) put(b *bytes.Buffer) {
	if b.Cap() > 4<<20 { // don't pin a one-off giant
		return
	}
	select {
	case l <- b:
	default:
	}
}

func (s *server) html(w http.ResponseWriter, code int, name string, data any) {
	s.htmlCSP(w, code, name, data, s.pages.csp)
}

// htmlCSP is html with a page's own Content-Security-Policy.
func (s *server) htmlCSP(w http.ResponseWriter, code int, name string, data any, csp string) {
	buf := s.bufs.get()
	defer s.bufs.put(buf)
	if err := s.pages.t.ExecuteTemplate(buf, name, data); err != nil {
		text(w, http.StatusInternalServerError, "rendering page: "+err.Error())
		return
	}
	w.Header().Set("Content-Security-Policy", csp)
	w.Header().Set("Referrer-Policy", "no-referrer")
	writeBody(w, code, "text/html; charset=utf-8", buf.Bytes())
}

func (s *server) flowPage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	v, ok := s.flowView(r.Context(), name)
	if !ok {
		s.notFound(w, "No flow named "+strconv.Quote(name)+" is configured.")
		return
	}
	s.html(w, http.StatusOK, "flow", v)
}

func (s *server) runPage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("trace_id")
	v, ok := s.runView(id, r.URL.Query().Get("flow"))
	if !ok {
		s.notFound(w, "No kept run has trace id "+strconv.Quote(id)+
			". Only the most recent runs of each flow are kept; older ones are in the logs.")
		return
	}
	s.html(w, http.StatusOK, "run", v)
}

// screenshot serves a failed browser step's PNG, as the run page links
// it. Its secrets were masked before it was taken.
func (s *server) screenshot(w http.ResponseWriter, r *http.Request) {
	var png []byte
	ok := false
	if s.o.Screenshots != nil {
		png, ok = s.o.Screenshots(r.PathValue("trace_id"), r.PathValue("span_id"))
	}
	if !ok {
		s.notFound(w, "No screenshot kept for this step: only the newest are.")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "image/png")
	h.Set("Content-Length", strconv.Itoa(len(png)))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	h.Set("Cache-Control", "private, max-age=3600") // a run's screenshot never changes
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(png)
}

func (s *server) notFound(w http.ResponseWriter, msg string) {
	s.html(w, http.StatusNotFound, "notfound", s.errorView("Not found", msg))
}

// ---- JSON API ----

type apiResults struct {
	Region      string        `json:"region"`
	GeneratedAt time.Time     `json:"generated_at"`
	Flows       []apiFlowRuns `json:"flows"`
}

type apiFlowRuns struct {
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Schedule    string            `json:"schedule"`
	Labels      map[string]string `json:"labels"`
	State       string            `json:"state"` // passing, failing, no_data
	Runs        []*result.Run     `json:"runs"`
}

type apiError struct {
	Error string `json:"error"`
}

func (s *server) apiResults(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := defaultLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			// An explicit error rather than clamping: a script asking for
			// limit=5000 should learn it gets at most 1000.
			s.writeJSON(w, http.StatusBadRequest, apiError{fmt.Sprintf("limit must be an integer from 1 to %d, got %q", maxLimit, v)})
			return
		}
		limit = n
	}
	flows := s.o.Source.Flows()
	if name, ok := q["flow"]; ok {
		fi, found := findFlow(flows, name[0])
		if !found {
			s.writeJSON(w, http.StatusNotFound, apiError{"unknown flow " + strconv.Quote(name[0])})
			return
		}
		flows = []FlowInfo{fi}
	}
	// Streamed a flow at a time: at 10,000 flows with limit=1000 the whole
	// answer is 300,000 runs and hundreds of megabytes, which would
	// otherwise all be held at once. The shape is apiResults'.
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	head, _ := json.Marshal(apiResults{Region: s.o.Region, GeneratedAt: s.now()})
	bw.Write(bytes.TrimSuffix(head, []byte("null}"))) // up to "flows":, whose value follows
	bw.WriteByte('[')
	for i, f := range flows {
		if r.Context().Err() != nil {
			return // the client went away: stop reading the store for it
		}
		runs := s.o.Source.Recent(f.Name, limit)
		if runs == nil {
			runs = []*result.Run{} // [] rather than null: clients iterate
		}
		labels := f.Labels
		if labels == nil {
			labels = map[string]string{}
		}
		if i > 0 {
			bw.WriteByte(',')
		}
		// Only unencodable values could fail here, and these types hold
		// none; a client that went away shows as a write error, ignored.
		_ = enc.Encode(apiFlowRuns{Name: f.Name, Description: f.Description,
			Schedule: f.Schedule, Labels: labels, State: stateOf(runs).API, Runs: runs})
	}
	bw.WriteString("]}\n")
	_ = bw.Flush()
}

func (s *server) apiFlows(w http.ResponseWriter, _ *http.Request) {
	flows := s.o.Source.Flows()
	if flows == nil {
		flows = []FlowInfo{}
	}
	s.writeJSON(w, http.StatusOK, flows)
}

func (s *server) writeJSON(w http.ResponseWriter, code int, v any) {
	buf := s.bufs.get()
	defer s.bufs.put(buf)
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		code, buf = http.StatusInternalServerError, bytes.NewBuffer(nil)
		json.NewEncoder(buf).Encode(apiError{"encoding response: " + err.Error()})
	}
	writeBody(w, code, "application/json", buf.Bytes())
}

func findFlow(flows []FlowInfo, name string) (FlowInfo, bool) {
	for _, f := range flows {
		if f.Name == name {
			return f, true
		}
	}
	return FlowInfo{}, false
}

// favicon is prober's icon: a probe's pulse on a dark tile.
var favicon = []byte(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#1f2937"/><path d="M1 9h4l2-5 2 8 2-3h4" fill="none" stroke="#22c55e" stroke-width="1.6" stroke-linejoin="round"/></svg>`)
