package webhook

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/prober-dev/prober/internal/alert"
	"github.com/prober-dev/prober/internal/alert/notify/slack"
	"github.com/prober-dev/prober/internal/config"
)

const testSecret = "s3cret-0123456789"

// receiver is a strict webhook receiver: POST, JSON content type, the
// signature checked against the raw body, the body kept for the test.
type receiver struct {
	t      *testing.T
	secret string
	mu     sync.Mutex
	bodies [][]byte
	status int
	header http.Header
	answer string
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method == http.MethodGet {
		w.WriteHeader(r.getStatus())
		return
	}
	body, _ := io.ReadAll(req.Body)
	switch {
	case req.Method != http.MethodPost:
		r.t.Errorf("method %s", req.Method)
	case req.Header.Get("Content-Type") != "application/json":
		r.t.Errorf("content type %q", req.Header.Get("Content-Type"))
	case !json.Valid(body):
		r.t.Errorf("body is no JSON: %s", body)
	}
	sig := req.Header.Get(SignatureHeader)
	if r.secret == "" {
		if sig != "" {
			r.t.Errorf("unsigned notifier sent %s: %s", SignatureHeader, sig)
		}
	} else if !hmac.Equal([]byte(sig), []byte(Sign([]byte(r.secret), body))) || !strings.HasPrefix(sig, "sha256=") || len(sig) != 7+64 {
		r.t.Errorf("bad signature %q for %s", sig, body)
	}
	r.mu.Lock()
	r.bodies = append(r.bodies, body)
	r.mu.Unlock()
	for k, v := range r.header {
		w.Header()[k] = v
	}
	w.WriteHeader(r.getStatus())
	io.WriteString(w, r.answer)
}

func (r *receiver) getStatus() int {
	if r.status == 0 {
		return http.StatusAccepted
	}
	return r.status
}

// load decodes probes.yaml notifiers through the plug-in, as the daemon
// does, beside the Slack plug-in (whose keys, such as channel, are known
// but do not apply to a webhook).
func load(t *testing.T, notifiers string) (*config.Config, error) {
	t.Helper()
	fsys := fstest.MapFS{
		"probes.yaml": {Data: []byte("flows: [f.yaml]\nsecrets: {HOOK: {env: HOOK}, OFF: {env: OFF, optional: true}}\nnotifiers:\n" + notifiers)},
		"f.yaml":      {Data: []byte("name: f\nsteps:\n  - name: a\n    request: {url: \"http://127.0.0.1:1/\"}\n")},
	}
	return config.Load(fsys, "probes.yaml", config.Options{Notifiers: []config.NotifierKind{slack.Plugin{}, Plugin{}},
		Env: func(k string) (string, bool) {
			if k == "HOOK" {
				return testSecret, true
			}
			return "", false
		}})
}

func build(t *testing.T, block string) alert.Notifier {
	t.Helper()
	cfg, err := load(t, "  hook: "+block+"\n")
	if err != nil {
		t.Fatal(err)
	}
	n, err := Plugin{}.New(cfg.Alerting.Notifiers[0], alert.NotifierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func page(kind alert.Kind) *alert.Page {
	return &alert.Page{Kind: kind, DedupKey: "prober/group:checkout", Rule: "checkout_failing", Group: "checkout", Severity: "critical",
		Summary: `checkout failing at "pay" in 2 of 3 regions`, Source: "prober (region a)", Component: "checkout",
		Labels: map[string]string{"flow": "checkout"}, Details: []alert.Field{{Name: "step", Value: "pay"}},
		Links: []alert.Link{{Name: "logs", URL: "https://logs.test/?q=abc"}},
		At:    time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC), Since: time.Date(2026, 12, 7, 11, 58, 0, 0, time.UTC)}
}

// The default body is the page as JSON, signed: kind and dedup_key let the
// receiver open and close one incident.
func TestPageAsJSONSigned(t *testing.T) {
	r := &receiver{t: t, secret: testSecret}
	srv := httptest.NewServer(r)
	defer srv.Close()
	n := build(t, `{type: webhook, url: "`+srv.URL+`/hook", secret: "{{secret:HOOK}}"}`)
	if n.Name() != "hook" || n.Type() != "webhook" {
		t.Errorf("name %s type %s", n.Name(), n.Type())
	}
	for _, k := range []alert.Kind{alert.Trigger, alert.Reminder, alert.Resolve} {
		thread, err := n.Send(context.Background(), page(k), "")
		if err != nil || thread != "" {
			t.Fatalf("%s: thread %q err %v", k, thread, err)
		}
	}
	if len(r.bodies) != 3 {
		t.Fatalf("%d posts", len(r.bodies))
	}
	wantKeys := []string{"at", "component", "dedup_key", "details", "group", "kind", "labels", "links", "rule", "severity", "since", "source", "summary"}
	for i, k := range []string{"trigger", "reminder", "resolve"} {
		var m map[string]any
		if err := json.Unmarshal(r.bodies[i], &m); err != nil {
			t.Fatal(err)
		}
		var keys []string
		for key := range m {
			keys = append(keys, key)
		}
		slices.Sort(keys)
		if !slices.Equal(keys, wantKeys) {
			t.Errorf("body keys %v, want %v", keys, wantKeys)
		}
		var p alert.Page
		dec := json.NewDecoder(strings.NewReader(string(r.bodies[i])))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		want := page(alert.Kind(k))
		if p.Kind != want.Kind || p.DedupKey != want.DedupKey || p.Summary != want.Summary || !p.At.Equal(want.At) ||
			p.Details[0] != want.Details[0] || p.Links[0] != want.Links[0] || p.Labels["flow"] != "checkout" {
			t.Errorf("%s: got %+v", k, p)
		}
	}
}

// A template renders the body the receiver wants; json quotes values.
func TestTemplateBodyUnsigned(t *testing.T) {
	r := &receiver{t: t}
	srv := httptest.NewServer(r)
	defer srv.Close()
	n := build(t, `{type: webhook, url: "`+srv.URL+`", template: '{"text": {{json .Summary}}, "key": {{json .DedupKey}}, "action": {{json .Kind}}, "flow": {{json (index .Labels "flow")}}}'}`)
	if _, err := n.Send(context.Background(), page(alert.Resolve), ""); err != nil {
		t.Fatal(err)
	}
	var got struct{ Text, Key, Action, Flow string }
	dec := json.NewDecoder(strings.NewReader(string(r.bodies[0])))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Text != page(alert.Resolve).Summary || got.Key != "prober/group:checkout" || got.Action != "resolve" || got.Flow != "checkout" {
		t.Errorf("body %+v", got)
	}
}

// Answers are classified as the dispatcher retries them, and the
// receiver's words never carry the secret.
func TestDeliveryErrors(t *testing.T) {
	for _, tt := range []struct {
		status     int
		header     http.Header
		permanent  bool
		retryAfter time.Duration
	}{
		{status: 429, header: http.Header{"Retry-After": {"7"}}, retryAfter: 7 * time.Second},
		{status: 503},
		{status: 500},
		{status: 408},
		{status: 400, permanent: true},
		{status: 401, permanent: true},
		{status: 404, permanent: true},
	} {
		r := &receiver{t: t, secret: testSecret, status: tt.status, header: tt.header, answer: "no: " + testSecret}
		srv := httptest.NewServer(r)
		n := build(t, `{type: webhook, url: "`+srv.URL+`", secret: "{{secret:HOOK}}"}`)
		_, err := n.Send(context.Background(), page(alert.Trigger), "")
		srv.Close()
		var de *alert.DeliveryError
		if !errors.As(err, &de) {
			t.Fatalf("%d: error %v is no DeliveryError", tt.status, err)
		}
		if de.Status != tt.status || de.Permanent != tt.permanent || de.RetryAfter != tt.retryAfter {
			t.Errorf("%d: %+v", tt.status, de)
		}
		if strings.Contains(err.Error(), testSecret) || !strings.Contains(err.Error(), "no: ") {
			t.Errorf("%d: error text %q", tt.status, err)
		}
	}
	// Nobody answering is retried, and says so without the URL.
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	n := build(t, `{type: webhook, url: "`+url+`/x"}`)
	_, err := n.Send(context.Background(), page(alert.Trigger), "")
	var de *alert.DeliveryError
	if !errors.As(err, &de) || de.Permanent || strings.Contains(err.Error(), url) {
		t.Errorf("unreachable: %v", err)
	}
}

// The reachability probe sends nothing: a 405 is a healthy service.
func TestReach(t *testing.T) {
	r := &receiver{t: t, status: http.StatusMethodNotAllowed}
	srv := httptest.NewServer(r)
	defer srv.Close()
	n := build(t, `{type: webhook, url: "`+srv.URL+`"}`)
	rc, ok := n.(alert.Reacher)
	if !ok {
		t.Fatal("no reachability probe")
	}
	if err := rc.Reach(context.Background()); err != nil {
		t.Errorf("405: %v", err)
	}
	r.status = http.StatusServiceUnavailable
	if err := rc.Reach(context.Background()); err == nil {
		t.Error("503 counted as reachable")
	}
	if len(r.bodies) != 0 {
		t.Errorf("the probe posted %d bodies", len(r.bodies))
	}
}

// The block is validated at load, with positions.
func TestConfigErrors(t *testing.T) {
	for _, tt := range []struct{ block, want string }{
		{`{type: webhook}`, `probes.yaml:4:3: webhook notifier x needs a url`},
		{`{type: webhook, url: "ftp://h/"}`, `probes.yaml:4:27: "ftp://h/" is not an absolute http:// or https:// URL`},
		{`{type: webhook, url: "http://h/", secret: "{{secret:NOPE}}"}`, `probes.yaml:4:49: undefined secret "NOPE" (declare it under secrets: in probes.yaml)`},
		{`{type: webhook, url: "http://h/", template: '{{.Nope}}'}`, `probes.yaml:4:50: template: body:1:2: executing "body" at <.Nope>: can't evaluate field Nope in type *alert.Page`},
		{`{type: webhook, url: "http://h/", template: '{"text": {{.Summary}}}'}`, `probes.yaml:4:50: template renders no valid JSON (quote strings with {{json .Summary}}): {"text": checkout "failing"` + "\n" + `}`},
		{`{type: webhook, url: "http://h/", template: '{{'}`, `probes.yaml:4:50: template: body:1: unclosed action`},
		{`{type: webhook, url: "http://h/", channel: "#a"}`, `probes.yaml:4:40: channel does not apply to a webhook notifier`},
	} {
		_, err := load(t, "  x: "+tt.block+"\n")
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s:\n got %v\nwant %s", tt.block, err, tt.want)
		}
	}
	// An optional secret not set disables it, as for every type.
	cfg, err := load(t, `  x: {type: webhook, url: "http://h/", secret: "{{secret:OFF}}"}`+"\n")
	if err != nil {
		t.Fatal(err)
	}
	if d := cfg.Alerting.Notifiers[0].Disabled; d != "optional secret OFF is not set" {
		t.Errorf("Disabled = %q", d)
	}
}
