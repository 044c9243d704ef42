package runner

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/assert"
	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/secret"
	"github.com/prober-dev/prober/internal/template"
)

// keepServer answers by path: /ok 200, /big a 500 with a 10,000-byte body,
// (chunked: no Content-Length), /binary a 502 of raw bytes, /poll a 200 counting its polls.
func keepServer(t *testing.T) *httptest.Server {
	var polls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "req-42")
		switch r.URL.Path {
		case "/ok":
			fmt.Fprint(w, `{"status":"ok"}`)
		case "/big":
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Add("Set-Cookie", "a=1")
			w.Header().Add("Set-Cookie", "b=2")
			w.WriteHeader(500)
			fmt.Fprint(w, strings.Repeat("0123456789", 1000))
		case "/binary":
			w.WriteHeader(502)
			w.Write([]byte{0, 1, 2, 0x1b, '[', '2', 'J', 0xff})
		case "/poll":
			fmt.Fprintf(w, `{"status":"pending","poll":%d}`, polls.Add(1))
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestKeepResponse: a failed step keeps the status, headers and first
// keep_response bytes of its last attempt's answer; a passed step, a step
// without an answer and a flow with keep_response 0 keep nothing.
func TestKeepResponse(t *testing.T) {
	srv := keepServer(t)
	refused := "http://" + closedAddr(t)
	for _, tc := range []struct {
		name      string
		keep      int64
		bodyLimit int64
		steps     []*config.Step
		// want is the kept response of each step ("" none), as
		// "status|headers|len(body)|truncated".
		want []string
	}{
		{name: "a failed step keeps, bounded", keep: 4096,
			steps: []*config.Step{newStep("login", "GET", srv.URL+"/ok"), newStep("pay", "GET", srv.URL+"/big")},
			want:  []string{"", "500|Content-Type,Date,Set-Cookie,Set-Cookie,X-Request-Id|4096|true"}},
		{name: "a short body is kept whole", keep: 20000,
			steps: []*config.Step{newStep("pay", "GET", srv.URL+"/big")},
			want:  []string{"500|Content-Type,Date,Set-Cookie,Set-Cookie,X-Request-Id|10000|false"}},
		{name: "keep_response 0 keeps none", keep: 0,
			steps: []*config.Step{newStep("pay", "GET", srv.URL+"/big")},
			want:  []string{""}},
		{name: "an assertion on a 200", keep: 4096,
			steps: []*config.Step{newStep("pay", "GET", srv.URL+"/ok", `json.status == "success"`)},
			want:  []string{"200|Content-Length,Content-Type,Date,X-Request-Id|15|false"}},
		{name: "no answer: nothing, not the previous step's", keep: 4096,
			steps: []*config.Step{newStep("login", "GET", srv.URL+"/ok"), newStep("pay", "GET", refused+"/x")},
			want:  []string{"", ""}},
		{name: "body too large keeps its start", keep: 100, bodyLimit: 1000,
			steps: []*config.Step{newStep("pay", "GET", srv.URL+"/big")},
			want:  []string{"500|Content-Type,Date,Set-Cookie,Set-Cookie,X-Request-Id|100|true"}},
		{name: "binary kept raw", keep: 4096,
			steps: []*config.Step{newStep("pay", "GET", srv.URL+"/binary")},
			want:  []string{"502|Content-Length,Content-Type,Date,X-Request-Id|8|false"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFlow(tc.steps...)
			f.HTTP.KeepResponse = tc.keep
			if tc.bodyLimit != 0 {
				f.HTTP.BodyLimit = tc.bodyLimit
			}
			r := mustRun(t, f, Options{})
			if r.OK() {
				t.Fatalf("want a failed run: %s", r.Summary())
			}
			for i, s := range r.Steps {
				got := ""
				if k := s.Response; k != nil {
					var names []string
					for _, h := range k.Headers {
						names = append(names, h.Name)
					}
					got = fmt.Sprintf("%d|%s|%d|%v", k.Status, strings.Join(names, ","), len(k.Body), k.Truncated)
					if k.Proto != "HTTP/1.1" {
						t.Errorf("step %s: proto %q", s.Name, k.Proto)
					}
				}
				if got != tc.want[i] {
					t.Errorf("step %s (%s) kept %q, want %q", s.Name, s.Status, got, tc.want[i])
				}
			}
		})
	}
	// The kept bytes are the body's first ones, as they were.
	f := newFlow(newStep("pay", "GET", srv.URL+"/binary"))
	f.HTTP.KeepResponse = 4096
	if k := mustRun(t, f, Options{}).Steps[0].Response; k == nil || !bytes.Equal(k.Body, []byte{0, 1, 2, 0x1b, '[', '2', 'J', 0xff}) {
		t.Errorf("binary body kept as %+v", k)
	}
}

// TestKeepUntil: a step whose until ran out keeps the last poll's answer.
func TestKeepUntil(t *testing.T) {
	srv := keepServer(t)
	st := newStep("settle", "GET", srv.URL+"/poll")
	st.Until = &config.Until{Expect: []*assert.Expectation{assert.MustCompile(`json.status == "confirmed"`)},
		Interval: 10 * time.Millisecond, Within: 100 * time.Millisecond}
	f := newFlow(st)
	f.HTTP.KeepResponse = 4096
	s := mustRun(t, f, Options{}).Steps[0]
	if s.Status != result.Failed || s.Attempts < 2 || s.Response == nil {
		t.Fatalf("until step %s after %d attempts kept %+v", s.Status, s.Attempts, s.Response)
	}
	if want := fmt.Sprintf(`"poll":%d}`, s.Attempts); !strings.Contains(string(s.Response.Body), want) {
		t.Errorf("kept %q, want the last poll's (%s)", s.Response.Body, want)
	}
}

// TestKeepKindReply: a kind's failed step keeps its reply as the body.
func TestKeepKindReply(t *testing.T) {
	f := newFlow(echoStep("banner", &echoSpec{Msg: template.MustParse("220 mail ESMTP"), Fail: result.Assertion}))
	f.HTTP.KeepResponse = 4
	s := mustRun(t, f, Options{}).Steps[0]
	if s.Response == nil || string(s.Response.Body) != "220 " || !s.Response.Truncated || s.Response.Status != 0 {
		t.Fatalf("kind reply kept as %+v", s.Response)
	}
	f = newFlow(echoStep("banner", &echoSpec{Msg: template.MustParse("220 mail ESMTP")}))
	f.HTTP.KeepResponse = 4096
	var seen string
	verbose := func(step string, attempt int, req *result.Sent, resp *result.Response) {
		seen = fmt.Sprintf("%s#%d %s %s %q", step, attempt, req.Method, req.URL, resp.Body)
	}
	if s := mustRun(t, f, Options{Verbose: verbose}).Steps[0]; s.Status != result.Passed || s.Response != nil {
		t.Errorf("passed kind step kept %+v", s.Response)
	}
	if want := `banner#1 ECHO echo://220 mail ESMTP "220 mail ESMTP"`; seen != want {
		t.Errorf("verbose saw %q, want %q", seen, want)
	}
}

// TestKeepRedacted: a secret the server echoes in headers (Set-Cookie, an
// Authorization echo) and in the body (plain, base64, URL-encoded, and
// across the keep_response cut) never shows in the kept response, nor in
// what --verbose shows of the exchange.
func TestKeepRedacted(t *testing.T) {
	const pw = "Tr0ub4dor&3-horse+battery/staple"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Set-Cookie", "session="+url.QueryEscape(pw)+"; HttpOnly")
		w.Header().Set("X-Echo-Auth", r.Header.Get("Authorization"))
		w.Header().Set("X-Plain", pw)
		w.WriteHeader(401)
		pad := r.URL.Query().Get("pad")
		fmt.Fprintf(w, "plain=%s b64=%s url=%s %s%s", pw, base64.StdEncoding.EncodeToString([]byte(pw)),
			url.QueryEscape(pw), strings.Repeat("~", len(pad)), pw)
	}))
	defer srv.Close()
	secrets := secret.NewSet(map[string]string{"PW": pw})
	for _, keep := range []int{4096, 100, 120, 130, 140, 150} {
		// pad puts the last echo across the cut at keep.
		st := newStep("login", "POST", srv.URL+"/login?pad="+strings.Repeat("x", max(0, keep-130)))
		httpOf(st).BasicAuth = &config.BasicAuth{User: template.MustParse("u"), Password: template.MustParse("{{secret:PW}}")}
		httpOf(st).Headers = []config.Header{{Name: "X-Token", Value: template.MustParse("{{secret:PW}}")}}
		f := newFlow(st)
		f.HTTP.KeepResponse = int64(keep)
		var shown []string
		r := mustRun(t, f, Options{Secrets: secrets, Verbose: func(step string, attempt int, req *result.Sent, resp *result.Response) {
			b, _ := json.Marshal([]any{req, resp})
			shown = append(shown, string(b), string(resp.Body), result.Text(resp.Body))
			for _, h := range append(req.Headers, resp.Headers...) {
				shown = append(shown, h.Value)
			}
		}})
		k := r.Steps[0].Response
		if k == nil || k.Status != 401 {
			t.Fatalf("keep %d: kept %+v", keep, k)
		}
		if len(shown) == 0 {
			t.Fatal("verbose saw no exchange")
		}
		b, _ := json.Marshal(r)
		shown = append(shown, string(b), string(k.Body), result.Text(k.Body))
		for _, h := range k.Headers {
			shown = append(shown, h.Value)
		}
		for _, out := range shown {
			if l := leak(pw, out); l != "" {
				t.Fatalf("keep %d: %s in %q", keep, l, out)
			}
		}
		if !strings.Contains(string(b), "[secret:PW]") {
			t.Errorf("keep %d: no redaction marker in %s", keep, b)
		}
	}
}

// leak says which form of secret v out shows (whole, or 8 bytes of the
// secret itself), or "".
func leak(v, out string) string {
	for _, f := range secret.Forms(v) {
		if strings.Contains(out, f) {
			return fmt.Sprintf("form %q", f)
		}
	}
	for i := 0; i+8 <= len(v); i++ {
		if strings.Contains(out, v[i:i+8]) {
			return fmt.Sprintf("part %q", v[i:i+8])
		}
	}
	return ""
}

// TestVerbose: --verbose sees every attempt of every step, passed too,
// with the request as sent and the whole response.
func TestVerbose(t *testing.T) {
	srv := keepServer(t)
	f := newFlow(newStep("login", "GET", srv.URL+"/ok"), newStep("pay", "GET", srv.URL+"/big"))
	f.HTTP.KeepResponse = 10
	var seen []string
	r := mustRun(t, f, Options{Verbose: func(step string, attempt int, req *result.Sent, resp *result.Response) {
		tp := ""
		for _, h := range req.Headers {
			if h.Name == "Traceparent" {
				tp = h.Value
			}
		}
		seen = append(seen, fmt.Sprintf("%s#%d %s %s %d %d %v", step, attempt, req.Method, strings.TrimPrefix(req.URL, srv.URL), resp.Status, len(resp.Body), tp != ""))
	}})
	want := []string{"login#1 GET /ok 200 15 true", "pay#1 GET /big 500 10000 true"}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("verbose saw %q, want %q", seen, want)
	}
	if r.Steps[0].Response != nil {
		t.Errorf("verbose made a passed step keep its response")
	}
}

func TestCutRune(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"abcdef", 3, "abc"},
		{"ab✓cd", 3, "ab"}, // ✓ is 3 bytes: not split
		{"ab✓cd", 5, "ab✓"},
		{"ab\xff\xfecd", 3, "ab\xff"},
		{"abc", 5, "abc"},
	} {
		if got := cutRune(tc.in, tc.n); got != tc.want {
			t.Errorf("cutRune(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
