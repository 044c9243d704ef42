package opsgenie

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prober-dev/prober/internal/alert"
	"github.com/prober-dev/prober/internal/alert/alerttest"
	"github.com/prober-dev/prober/internal/alert/notify/slack"
	"github.com/prober-dev/prober/internal/config"
)

// Distinctive keys, scanned for in every error and log line.
const (
	ogKey    = "3f0c7a52-9b1e-4d6a-8c2f-5e7d9a1b0c4e"
	ogKeyBad = "00000000-dead-beef-0000-000000000000"
)

func newNotifier(t *testing.T, base, key string) alert.Notifier {
	t.Helper()
	n, err := Plugin{}.New(&config.Notifier{Name: "og", Type: Type, Spec: &Spec{APIURL: base, APIKey: key}, Timeout: 2 * time.Second}, alert.NotifierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCreateFields(t *testing.T) {
	f := newFake(t, ogKey)
	n := newNotifier(t, f.srv.URL, ogKey)
	if n.Name() != "og" || n.Type() != Type {
		t.Errorf("Name, Type = %q, %q", n.Name(), n.Type())
	}
	p := alerttest.SamplePage(alert.Trigger)
	p.Summary += "; and more words follow, so that the message is cut at 130 characters"
	th, err := n.Send(context.Background(), p, "")
	if err != nil || th != "P1" {
		t.Fatalf("Send = %q, %v", th, err)
	}
	a := f.alert(p.DedupKey)
	if a == nil {
		t.Fatalf("no alert; requests %+v", f.reqs())
	}
	c := a.Create
	for _, tt := range []struct{ field, got, want string }{
		{"message", c.Message, p.Summary[:129] + "…"},
		{"alias", c.Alias, "checkout_failing/flow=checkout"},
		{"priority", c.Priority, "P1"},
		{"source", c.Source, "prober (regions a, b, c)"},
		{"entity", c.Entity, "checkout"},
		{"user", c.User, "prober"},
	} {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.field, tt.got, tt.want)
		}
	}
	if utf8.RuneCountInString(c.Message) != messageMax {
		t.Errorf("message of %d characters", utf8.RuneCountInString(c.Message))
	}
	wantDesc := p.Summary + "\n\nstep: pay\ngateway success: 0% (was 99.8%)\ntrace: 4bf92f3577b34da6a3ce929d0e0e4736\nstep: confirm\n\n" +
		"dashboard: https://grafana.example/d/checkout\nlogs: https://logs.example/search?q=4bf92f35"
	if c.Description != wantDesc {
		t.Errorf("description:\n%s\nwant:\n%s", c.Description, wantDesc)
	}
	wantTags := []string{"prober", "severity:critical", "rule:checkout_failing", "group:payments", "class:swallowed_error", "team:payments", "tier:critical"}
	if !slices.Equal(c.Tags, wantTags) {
		t.Errorf("tags %q, want %q", c.Tags, wantTags)
	}
	wantDetails := map[string]string{"dedup_key": p.DedupKey, "step": "pay", "step (2)": "confirm", "gateway success": "0% (was 99.8%)",
		"trace": "4bf92f3577b34da6a3ce929d0e0e4736", "label:team": "payments", "label:tier": "critical",
		"link:dashboard": "https://grafana.example/d/checkout", "link:logs": "https://logs.example/search?q=4bf92f35"}
	if fmt.Sprint(c.Details) != fmt.Sprint(wantDetails) {
		t.Errorf("details %v\nwant %v", c.Details, wantDetails)
	}
}

func TestPriorities(t *testing.T) {
	for sev, want := range map[string]string{"critical": "P1", "error": "P2", "warning": "P3", "info": "P5", "Warning ": "P3", "page": "P1", "": "P1"} {
		if got := Priority(sev); got != want {
			t.Errorf("Priority(%q) = %s, want %s", sev, got, want)
		}
	}
}

// The incident's whole life on one alert: created once, noted, raised
// when a critical member escalates it, closed by alias.
func TestLifecycleByAlias(t *testing.T) {
	f := newFake(t, ogKey)
	n := newNotifier(t, f.srv.URL, ogKey)
	ctx := context.Background()
	p := alerttest.SamplePage(alert.Trigger)
	p.Severity = "warning"
	p.DedupKey = "checkout/flow=a b?c#d%" // every character a path could break on
	th, err := n.Send(ctx, p, "")
	if err != nil || th != "P3" {
		t.Fatalf("trigger: %q, %v", th, err)
	}
	rem := *p
	rem.Kind = alert.Reminder
	if th, err = n.Send(ctx, &rem, th); err != nil || th != "P3" {
		t.Fatalf("reminder: %q, %v", th, err)
	}
	rem.Note = "checkout_slo resolved (condition cleared); still firing: checkout_failing (warning)"
	if th, err = n.Send(ctx, &rem, th); err != nil || th != "P3" {
		t.Fatalf("note: %q, %v", th, err)
	}
	esc := *p
	esc.Severity = "critical"
	if th, err = n.Send(ctx, &esc, th); err != nil || th != "P1" {
		t.Fatalf("escalation: %q, %v", th, err)
	}
	// A warning joining later does not lower it.
	if th, err = n.Send(ctx, p, th); err != nil || th != "P1" {
		t.Fatalf("lower trigger: %q, %v", th, err)
	}
	res := *p
	res.Kind = alert.Resolve
	res.At = res.Since.Add(47 * time.Minute)
	res.Details = append([]alert.Field{{Name: "resolved", Value: "condition cleared"}}, res.Details...)
	if th, err = n.Send(ctx, &res, th); err != nil || th != "" {
		t.Fatalf("resolve: %q, %v", th, err)
	}
	a := f.alert(p.DedupKey)
	if a == nil || a.Status != "closed" || a.Count != 3 || a.Priority != "P1" {
		t.Fatalf("alert %+v", a)
	}
	if want := []string{"Still failing: " + p.Summary, rem.Note}; !slices.Equal(a.Notes, want) {
		t.Errorf("notes %q, want %q", a.Notes, want)
	}
	if len(a.Closes) != 1 || !strings.HasPrefix(a.Closes[0], "Resolved after 47m0s; resolved: condition cleared. checkout failing") {
		t.Errorf("close notes %q", a.Closes)
	}
	var paths []string
	for _, r := range f.reqs() {
		paths = append(paths, r.Method+" "+r.Path)
	}
	esc2 := "checkout%2Fflow=a%20b%3Fc%23d%25"
	want := []string{"POST /v2/alerts", "POST /v2/alerts/" + esc2 + "/notes", "POST /v2/alerts/" + esc2 + "/notes", "POST /v2/alerts",
		"PUT /v2/alerts/" + esc2 + "/priority", "POST /v2/alerts", "POST /v2/alerts/" + esc2 + "/close"}
	if !slices.Equal(paths, want) {
		t.Errorf("requests:\n%q\nwant:\n%q", paths, want)
	}
}

// Opsgenie's limits: a huge page still makes an alert it accepts.
func TestLimits(t *testing.T) {
	f := newFake(t, ogKey)
	n := newNotifier(t, f.srv.URL, ogKey)
	p := alerttest.SamplePage(alert.Trigger)
	p.Summary = strings.Repeat("é", 20000)
	p.Source = strings.Repeat("s", 300)
	p.Labels = map[string]string{}
	for i := range 40 {
		p.Labels[fmt.Sprintf("label%02d", i)] = strings.Repeat("v", 80)
	}
	for i := range 100 {
		p.Details = append(p.Details, alert.Field{Name: fmt.Sprint("d", i), Value: strings.Repeat("x", 2000)})
	}
	if _, err := n.Send(context.Background(), p, ""); err != nil {
		t.Fatal(err)
	}
	c := f.alert(p.DedupKey).Create
	if len(c.Tags) != tagsMax || c.Details["…"] == "" || utf8.RuneCountInString(c.Description) != descriptionMax {
		t.Errorf("%d tags, marker %q, description of %d", len(c.Tags), c.Details["…"], utf8.RuneCountInString(c.Description))
	}
	// A blank summary still makes a message Opsgenie accepts.
	blank := &alert.Page{Kind: alert.Trigger, DedupKey: "k", Rule: "r", Severity: "critical"}
	if _, err := n.Send(context.Background(), blank, ""); err != nil || f.alert("k").Create.Message != "r firing" {
		t.Errorf("blank summary: %v", err)
	}
}

// Answers are classified as the dispatcher retries them; Opsgenie's words
// are kept, the key never.
func TestDeliveryErrors(t *testing.T) {
	for _, tt := range []struct {
		name       string
		key        string
		status     int
		retryAfter string
		body       string
		permanent  bool
		wait       time.Duration
		msg        string
	}{
		{name: "wrong key", key: ogKeyBad, status: 401, permanent: true, msg: "creating the alert: Could not authenticate"},
		{name: "422 keeps the field errors", status: 422, body: `{"message":"Request body is not processable","errors":{"message":"Message can not be empty.","alias":"too long"},"took":0.001}`,
			permanent: true, msg: "creating the alert: Request body is not processable; alias: too long; message: Message can not be empty."},
		{name: "403 echoing the key", status: 403, body: `{"message":"key ` + ogKey + ` may not create alerts"}`, permanent: true, msg: "key [secret:api_key] may not"},
		{name: "429", status: 429, retryAfter: "9", wait: 9 * time.Second, msg: "Too Many Requests"},
		{name: "503", status: 503, msg: "Service Unavailable"},
		{name: "500 plain", status: 500, body: "upstream broke", msg: "creating the alert: upstream broke"},
		{name: "408", status: 408},
		{name: "404", status: 404, permanent: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, ogKey)
			if tt.key == "" {
				f.failNext(1, tt.status, tt.retryAfter, tt.body)
			}
			n := newNotifier(t, f.srv.URL, cmpOr(tt.key, ogKey))
			_, err := n.Send(context.Background(), alerttest.SamplePage(alert.Trigger), "")
			var de *alert.DeliveryError
			if !errors.As(err, &de) {
				t.Fatalf("Send = %v, want a *alert.DeliveryError", err)
			}
			if de.Permanent != tt.permanent || de.Status != tt.status || de.RetryAfter != tt.wait || !strings.Contains(de.Error(), tt.msg) {
				t.Errorf("got %+v (%q); want permanent=%v status=%d wait=%v msg~%q", de, de.Error(), tt.permanent, tt.status, tt.wait, tt.msg)
			}
			alerttest.NoSecrets(t, err.Error(), ogKey, ogKeyBad)
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		u := srv.URL
		srv.Close()
		_, err := newNotifier(t, u, ogKey).Send(context.Background(), alerttest.SamplePage(alert.Resolve), "")
		var de *alert.DeliveryError
		if !errors.As(err, &de) || de.Permanent || de.Status != 0 || !strings.Contains(err.Error(), "Opsgenie unreachable (closing the alert)") || strings.Contains(err.Error(), u) {
			t.Errorf("Send = %v", err)
		}
		alerttest.NoSecrets(t, err.Error(), ogKey)
	})
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// The probe sends no key and creates nothing; a 401 is Opsgenie answering.
func TestReach(t *testing.T) {
	f := newFake(t, ogKey)
	n := newNotifier(t, f.srv.URL, ogKey)
	rc, ok := n.(alert.Reacher)
	if !ok {
		t.Fatal("no reachability probe")
	}
	if err := rc.Reach(context.Background()); err != nil {
		t.Errorf("401: %v", err)
	}
	f.mu.Lock()
	f.getCode = http.StatusServiceUnavailable
	f.mu.Unlock()
	if err := rc.Reach(context.Background()); err == nil {
		t.Error("503 counted as reachable")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) != 0 || len(f.gets) != 2 {
		t.Errorf("%d requests, %d probes", len(f.requests), len(f.gets))
	}
	for _, h := range f.gets {
		if h.Get("Authorization") != "" {
			t.Error("the probe carried the key")
		}
	}
}

func TestDecode(t *testing.T) {
	cfg, errs := alerttest.Load(t, `{og: {type: opsgenie, api_key: "{{secret:S}}"}, eu: {type: opsgenie, api_key: "{{secret:S}}", api_url: "https://api.eu.opsgenie.com/"}, off: {type: opsgenie, api_key: "{{secret:OPT}}"}}`, ogKey, Plugin{})
	if errs != nil {
		t.Fatal(errs)
	}
	nt := cfg.Alerting.Notifiers
	if s := nt[0].Spec.(*Spec); s.APIKey != ogKey || s.APIURL != "https://api.opsgenie.com" || !nt[0].Traits.Pages || nt[0].Traits.NoNotes {
		t.Errorf("og: %+v %+v", nt[0], s)
	}
	if s := nt[1].Spec.(*Spec); s.APIURL != "https://api.eu.opsgenie.com" {
		t.Errorf("eu: %q", s.APIURL)
	}
	if nt[2].Disabled != "optional secret OPT is not set" {
		t.Errorf("off.Disabled = %q", nt[2].Disabled)
	}
	// It pages: warnings stay out of its default route.
	if r := cfg.Alerting.Routes; !slices.Contains(r["critical"], "og") || slices.Contains(r["warning"], "og") {
		t.Errorf("routes %v", r)
	}
	for _, tt := range []struct{ block, want string }{
		{`{x: {type: opsgenie}}`, `probes.yaml:3:13: opsgenie notifier x needs api_key (use {{secret:NAME}})`},
		{`{x: {type: opsgenie, api_key: "{{secret:S}}", api_url: "http://h/{{secret:S}}"}}`, `probes.yaml:3:77: api_url cannot use {{...}}; secrets belong in api_key`},
		{`{x: {type: opsgenie, api_key: "{{secret:S}}", api_url: "api.opsgenie.com"}}`, `probes.yaml:3:67: "api.opsgenie.com" is not an absolute http:// or https:// URL`},
		{`{x: {type: opsgenie, api_key: "{{secret:NOPE}}"}}`, `probes.yaml:3:43: undefined secret "NOPE" (declare it under secrets: in probes.yaml)`},
		{`{x: {type: opsgenie, api_key: "{{secret:S}}", channel: "#a"}}`, `probes.yaml:3:58: channel does not apply to a opsgenie notifier`},
	} {
		_, errs := alerttest.Load(t, tt.block, ogKey, Plugin{}, slack.Plugin{})
		if got := strings.Join(errs, "\n"); got != tt.want {
			t.Errorf("%s:\n%s\nwant:\n%s", tt.block, got, tt.want)
		}
	}
}

func TestCheckSecrets(t *testing.T) {
	for _, tt := range []struct{ key, want string }{
		{ogKey, ""},
		{"", ""},
		{strings.ToUpper(ogKey), ""},
		{ogKey[:35], "api_key is 35 characters and not a UUID; an Opsgenie API key is 36 (8-4-4-4-12 hexadecimal digits)"},
		{ogKey + "\n", "api_key has leading or trailing whitespace (a newline from the secret's source?)"},
		{strings.ReplaceAll(ogKey, "-", "x"), "api_key is 36 characters and not a UUID; an Opsgenie API key is 36 (8-4-4-4-12 hexadecimal digits)"},
	} {
		got := strings.Join(Plugin{}.CheckSecrets(&config.Notifier{Spec: &Spec{APIKey: tt.key}}), "\n")
		if got != tt.want {
			t.Errorf("key of %d: %q, want %q", len(tt.key), got, tt.want)
		}
		if tt.key != "" {
			alerttest.NoSecrets(t, got, tt.key)
		}
	}
	if _, err := (Plugin{}).New(&config.Notifier{Name: "og"}, alert.NotifierOptions{}); err == nil {
		t.Error("New without a key accepted")
	}
}

// Through the real pipeline: the manager pages, the dispatcher delivers,
// retrying a 503 and a 429 as for every notifier; Opsgenie sees one alert,
// created once and closed once, and the key appears in no log line.
func TestDispatcherRetriesAndDedup(t *testing.T) {
	f := newFake(t, ogKey)
	f.failNext(1, http.StatusServiceUnavailable, "", "")
	f.failNext(1, http.StatusTooManyRequests, "0", `{"message":"You are making too many requests!"}`)
	cfg, errs := alerttest.Load(t, `{og: {type: opsgenie, api_key: "{{secret:S}}", api_url: "`+f.srv.URL+`"}}`, ogKey, Plugin{})
	if errs != nil {
		t.Fatal(errs)
	}
	logs := &alerttest.Buffer{}
	n, err := Plugin{}.New(cfg.Alerting.Notifiers[0], alert.NotifierOptions{Logger: alerttest.Logger(logs)})
	if err != nil {
		t.Fatal(err)
	}
	alerttest.FireAndResolve(t, cfg, n, logs)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.alerts) != 1 {
		t.Fatalf("alerts %+v", f.alerts)
	}
	for alias, al := range f.alerts {
		if al.Count != 1 || al.Status != "closed" || len(al.Closes) != 1 || al.Priority != "P1" || alias == "" {
			t.Errorf("alert %s: %+v", alias, al)
		}
	}
	var creates, closes int
	for _, r := range f.requests {
		switch {
		case r.Path == "/v2/alerts":
			creates++
		case strings.HasSuffix(r.Path, "/close"):
			closes++
		}
	}
	if creates != 3 || closes != 1 {
		t.Errorf("%d creates (want 3: a 503, a 429, then accepted), %d closes", creates, closes)
	}
	if retries := logs.Lines(t, "page_retry"); len(retries) != 2 {
		t.Errorf("%d page_retry lines, want 2", len(retries))
	}
	alerttest.NoSecrets(t, logs.String(), ogKey)
	var body map[string]any
	if err := json.Unmarshal(f.requests[2].Body, &body); err != nil || body["alias"] == nil {
		t.Errorf("create body %s: %v", f.requests[2].Body, err)
	}
}
