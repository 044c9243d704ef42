package secret_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prober-dev/prober/internal/alert"
	"github.com/prober-dev/prober/internal/alert/notify/console"
	"github.com/prober-dev/prober/internal/assert"
	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/report"
	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/runlog"
	"github.com/prober-dev/prober/internal/runner"
	"github.com/prober-dev/prober/internal/secret"
	"github.com/prober-dev/prober/internal/template"
	"github.com/prober-dev/prober/internal/web"
)

// The sink tests run a secret through everything in-process that shows a
// run: a server echoes it back (in headers, as basic auth, in JSON, after a
// padding that puts it across the cuts of failure messages), expectations
// fail on the echoes, and the run goes to the log (runlog's JSON, without
// the redacting handler: the Result must be clean by itself), `once`'s
// text, JSON, JUnit and --verbose, the web pages and API (the kept
// response of the failed step included), and a notifier's page. No
// encoding of the secret, nor 8 bytes of one, may show anywhere.

// echoServer echoes the secret of a JSON body {"k": ...} back.
func echoServer() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct{ K string }
		json.NewDecoder(r.Body).Decode(&in)
		pad, _ := strconv.Atoi(r.URL.Query().Get("pad"))
		padded := strings.Repeat("~", pad) + in.K
		w.Header().Set("X-Echo-Key", in.K) // net/http folds CR and LF to spaces
		w.Header().Set("X-Echo-Auth", r.Header.Get("Authorization"))
		w.Header().Set("X-Long", padded)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"echo": in.K, "long": padded, "obj": map[string]string{"pw": padded}})
	}))
}

// sinkStep posts the secret and fails on every echo.
func sinkStep(url string, pad int) *config.Step {
	st := &config.Step{
		StepDef: &config.StepDef{Name: "echo", Method: "POST", Timeout: 5 * time.Second},
		Spec: &config.HTTPSpec{
			Method: "POST",
			URL:    template.MustParse(url + "/echo?pad=" + strconv.Itoa(pad)),
			Query:  []config.Param{{Name: "key", Value: template.MustParse("{{secret:S}}")}},
			Body: config.Body{Kind: config.JSONBody, ContentType: "application/json", Template: template.Join(
				template.Part{T: template.Literal(`{"k":"`)},
				template.Part{T: template.MustParse(`{{secret:S}}`), Esc: template.JSONString},
				template.Part{T: template.Literal(`"}`)})},
			BasicAuth: &config.BasicAuth{User: template.MustParse("u"), Password: template.MustParse("{{secret:S}}")},
		},
	}
	for _, e := range []string{
		`header.X-Echo-Key == "nope"`, `header.X-Echo-Auth == "nope"`, `header.X-Long == "nope"`,
		`json.echo == "nope"`, `json.long == "nope"`, `json.obj == "nope"`, `body == "nope"`,
		`body !contains "~"`, `header.X-Long !matches "u|~"`, `json.long > 3`, `json.obj > 3`,
	} {
		st.Expect = append(st.Expect, assert.MustCompile(e))
	}
	return st
}

// fakeSource serves one run to the web pages.
type fakeSource struct{ run *result.Run }

func (f *fakeSource) Flows() []web.FlowInfo {
	return []web.FlowInfo{{Name: "sink", Schedule: "every 1m", Steps: []web.StepInfo{{Name: "echo", Method: "POST", URL: "{{base}}/echo"}}}}
}
func (f *fakeSource) Recent(string, int) []*result.Run { return []*result.Run{f.run} }

type sinks struct {
	// pages are the web paths shown; the fuzz target keeps to the run
	// page and the results API, for speed.
	pages []string
	srv   *httptest.Server
	src   *fakeSource
	web   http.Handler
	ctrl  string // what the sinks show of a control secret: their own text
}

func newSinks(t testing.TB, pages ...string) *sinks {
	s := &sinks{pages: pages, srv: echoServer(), src: &fakeSource{}}
	t.Cleanup(s.srv.Close)
	s.web = web.New(web.Options{Region: "r", Version: "v", Source: s.src})
	s.ctrl = strings.Join(s.outputs(t, "Control-Value-0123", 200), "\n")
	return s
}

// outputs runs the flow with secret v and returns everything it shows.
func (s *sinks) outputs(t testing.TB, v string, pad int) []string {
	set := secret.NewSet(map[string]string{"S": v, "OTHER": "Other-Secret-42"})
	f := &config.Flow{Name: "sink", Vars: map[string]string{},
		FlowDef: &config.FlowDef{Timeout: 10 * time.Second,
			// keep_response moves with pad, so that its cut falls across the echoes.
			HTTP: config.HTTPOptions{BodyLimit: 1 << 20, KeepResponse: int64(64 + pad)}},
		Steps: []*config.Step{sinkStep(s.srv.URL, pad)}}
	var verbose bytes.Buffer // once --verbose: every exchange, curl -v style
	rf, err := runner.New(f, runner.Options{Region: "r", Version: "v", Secrets: set,
		Verbose: func(step string, attempt int, req *result.Sent, resp *result.Response) {
			report.Exchange(&verbose, step, attempt, req, resp)
		}})
	if err != nil {
		t.Fatal(err)
	}
	r := rf.Run(context.Background(), time.Time{})
	rf.Close()
	// The echo must have come back: answered, or refused as malformed
	// with the secret in the complaint.
	if r.OK() || len(r.Steps) != 1 || r.Steps[0].HTTPStatus != 200 && !strings.Contains(r.Summary(), "[secret:S]") {
		t.Fatalf("want the echo step answered and failed: %s", r.Summary())
	}
	var out []string
	var logBuf bytes.Buffer
	runlog.New(slog.New(slog.NewJSONHandler(&logBuf, nil))).Observe(r)
	out = append(out, logBuf.String())
	var text, junit bytes.Buffer
	report.Text(&text, r)
	report.JUnit(&junit, []*result.Run{r})
	js, _ := json.MarshalIndent([]*result.Run{r}, "", "  ")
	out = append(out, text.String(), junit.String(), string(js), verbose.String())
	if r.Steps[0].HTTPStatus != 0 && (r.Steps[0].Response == nil || verbose.Len() == 0) {
		t.Fatalf("the answered step kept no response, or --verbose saw nothing: nothing proven of them")
	}
	s.src.run = r
	for _, path := range s.pages {
		path = strings.ReplaceAll(path, "{trace}", r.TraceID)
		rec := httptest.NewRecorder()
		s.web.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != 200 {
			t.Fatalf("%s: %d", path, rec.Code)
		}
		out = append(out, rec.Body.String())
	}
	// A page as the notifiers and the state file carry it.
	page := &alert.Page{Kind: alert.Trigger, Rule: "sink_failing", Severity: "critical",
		Summary: "sink failing in 1/1 regions; " + r.Summary(), Component: "sink", Class: string(r.Class)}
	for _, st := range r.Steps {
		if m := st.Message(); m != "" {
			page.Details = append(page.Details, alert.Field{Name: st.Name, Value: m})
		}
	}
	var cons bytes.Buffer
	console.New("console", &cons).Send(context.Background(), page, "")
	pj, _ := json.Marshal(page)
	out = append(out, cons.String(), string(pj))
	return out
}

// check fails t when any output shows v. It reports false, testing
// nothing, when the sinks' own text holds part of v (v = "</html>\n<").
func (s *sinks) check(t testing.TB, v string, pad int) bool {
	leak := secret.Leak(v)
	if l := leak(s.ctrl); l != "" {
		return false
	}
	for i, o := range s.outputs(t, v, pad) {
		if l := leak(o); l != "" {
			t.Fatalf("secret %q (pad %d) leaks in output %d: %s", v, pad, i, l)
		}
		if strings.Contains(o, "Other-Secret-42") {
			t.Fatalf("the other secret leaks in output %d", i)
		}
	}
	return true
}

// usable says whether v can be a configured secret for these tests.
func usable(v string) bool {
	return utf8.ValidString(v) && !secret.Short(v) && len(v) <= 2048 && !strings.Contains(v, "secret:") && !strings.Contains(v, "~~~~")
}

// TestRedactSinksProperty: random secrets of every awkward kind and length
// around the cut limits, at paddings that put them across the cuts.
func TestRedactSinksProperty(t *testing.T) {
	s := newSinks(t, "/", "/flows/sink", "/runs/{trace}", "/api/v1/results", "/api/v1/results?flow=sink&limit=1")
	pieces := []string{`"`, `\`, "&", "<", ">", "'", "+", "/", "%", " ", "\n", "\t", "é", "✓", "😀", "=", ":", "a", "Z", "7", "-"}
	seed := uint64(13)
	next := func(n int) int { seed = seed*6364136223846793005 + 1442695040888963407; return int(seed>>33) % n }
	tested := 0
	for i := 0; i < 30; i++ {
		n := []int{8, 9, 16, 26, 99, 100, 101, 119, 120, 121, 300, 1023, 1024, 1025}[next(14)]
		var b strings.Builder
		for b.Len() < n {
			b.WriteString(pieces[next(len(pieces))])
		}
		v := b.String()
		if !usable(v) {
			continue
		}
		if s.check(t, v, next(200)) {
			tested++
		}
	}
	if tested < 12 {
		t.Errorf("only %d secrets tested", tested)
	}
	// The three cases of issue 13, item 1.
	for _, v := range []string{`ab"cd&ef`, "Pw0rd-LeakCanary", "LeakCanary-0123456789abcde"} {
		for _, pad := range []int{0, 80, 100, 110, 119} {
			if !s.check(t, v, pad) {
				t.Errorf("%q not tested", v)
			}
		}
	}
}

func FuzzRedactSinks(f *testing.F) {
	for _, v := range []string{`ab"cd&ef`, "Pw0rd-LeakCanary", "LeakCanary-0123456789abcde", `x<y>&amp;"\u0000"z`, "  spaced\r\nout  ", "ünïcödé✓😀-secret"} {
		f.Add(v, uint8(100))
	}
	s := newSinks(f, "/runs/{trace}", "/api/v1/results") // its server lives as long as f
	f.Fuzz(func(t *testing.T, v string, pad uint8) {
		if !usable(v) {
			t.Skip()
		}
		if !s.check(t, v, int(pad)) {
			t.Skip()
		}
	})
}
