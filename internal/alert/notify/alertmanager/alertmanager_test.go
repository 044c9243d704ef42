package alertmanager

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prober-dev/prober/internal/alert"
	"github.com/prober-dev/prober/internal/alert/alerttest"
	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/golden"
)

// fakeAM holds to Alertmanager's API v2 contract for POST /api/v2/alerts
// (api/v2/openapi.yaml and 0.25's handler, checked against the binary):
// a JSON array of postableAlert with no unknown fields; labels required and
// non-empty, names [a-zA-Z_][a-zA-Z0-9_]*, values UTF-8; startsAt and
// endsAt RFC 3339, start not after end; generatorURL a URI. Validation
// errors are a 400 with a JSON string, unparsable bodies a 400 with
// {"code","message"}, schema errors a 422, a wrong media type a 415.
type fakeAM struct {
	*httptest.Server

	mu     sync.Mutex
	posts  []fakeAMPost
	faults []fakeAMFault
}

type fakeAMPost struct {
	Alerts   []amAlert
	Received time.Time
}

type fakeAMFault struct {
	status     int
	body       string
	retryAfter string
}

var amNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

func newFakeAM(t *testing.T) *fakeAM {
	f := &fakeAM{}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAM) failNext(status int, body, retryAfter string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, fakeAMFault{status, body, retryAfter})
}

func (f *fakeAM) received() []fakeAMPost {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.posts)
}

func amJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeAM) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != amAlertsPath {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		amJSON(w, http.StatusMethodNotAllowed, map[string]any{"code": 405, "message": "method " + r.Method + " is not allowed"})
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		amJSON(w, http.StatusUnsupportedMediaType, map[string]any{"code": 415, "message": fmt.Sprintf("unsupported media type %q, only [application/json] are allowed", ct)})
		return
	}
	f.mu.Lock()
	if len(f.faults) > 0 {
		ft := f.faults[0]
		f.faults = f.faults[1:]
		f.mu.Unlock()
		if ft.retryAfter != "" {
			w.Header().Set("Retry-After", ft.retryAfter)
		}
		w.WriteHeader(ft.status)
		io.WriteString(w, ft.body)
		return
	}
	f.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	var raw []json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		amJSON(w, 400, map[string]any{"code": 400, "message": "parsing alerts body failed: " + err.Error()})
		return
	}
	var alerts []amAlert
	for i, m := range raw {
		var a struct {
			Labels       map[string]string `json:"labels"`
			Annotations  map[string]string `json:"annotations"`
			StartsAt     *string           `json:"startsAt"`
			EndsAt       *string           `json:"endsAt"`
			GeneratorURL *string           `json:"generatorURL"`
		}
		dec := json.NewDecoder(bytes.NewReader(m))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&a); err != nil {
			amJSON(w, 400, map[string]any{"code": 400, "message": fmt.Sprintf("parsing alerts body failed: %v", err)})
			return
		}
		if a.Labels == nil {
			amJSON(w, 422, map[string]any{"code": 602, "message": fmt.Sprintf("%d.labels in body is required", i)})
			return
		}
		var start, end time.Time
		for _, ts := range []struct {
			s *string
			t *time.Time
		}{{a.StartsAt, &start}, {a.EndsAt, &end}} {
			if ts.s == nil {
				continue
			}
			t, err := time.Parse(time.RFC3339Nano, *ts.s)
			if err != nil {
				amJSON(w, 400, map[string]any{"code": 400, "message": "parsing alerts body failed: " + err.Error()})
				return
			}
			*ts.t = t
		}
		if a.GeneratorURL != nil {
			if u, err := url.Parse(*a.GeneratorURL); err != nil || u.Scheme == "" {
				amJSON(w, 422, map[string]any{"code": 601, "message": fmt.Sprintf("%d.generatorURL in body must be of type uri: %q", i, *a.GeneratorURL)})
				return
			}
		}
		var msg string
		switch {
		case len(a.Labels) == 0:
			msg = "at least one label pair required"
		case start.IsZero():
			msg = "start time missing" // the real one fills it in; ours must be sent
		case !end.IsZero() && end.Before(start):
			msg = "start time must be before end time"
		}
		for k, v := range a.Labels {
			if msg == "" && (!amNameRE.MatchString(k) || !utf8.ValidString(v)) {
				msg = fmt.Sprintf("invalid label set: invalid name %q", k)
			}
		}
		for k, v := range a.Annotations {
			if msg == "" && (!amNameRE.MatchString(k) || !utf8.ValidString(v)) {
				msg = fmt.Sprintf("invalid annotations: invalid name %q", k)
			}
		}
		if msg != "" {
			amJSON(w, 400, msg)
			return
		}
		alerts = append(alerts, amAlert{Labels: a.Labels, Annotations: a.Annotations, StartsAt: *a.StartsAt,
			EndsAt: deref(a.EndsAt), GeneratorURL: deref(a.GeneratorURL)})
	}
	f.mu.Lock()
	f.posts = append(f.posts, fakeAMPost{Alerts: alerts, Received: time.Now()})
	f.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func newAMNotifier(t *testing.T, rawURL string, now time.Time) *notifier {
	t.Helper()
	am, err := newNotifier("am", rawURL, 2*time.Second, alert.NotifierOptions{StatusURL: "http://prober.test/"})
	if err != nil {
		t.Fatal(err)
	}
	if !now.IsZero() {
		am.now = func() time.Time { return now }
	}
	return am
}

func amSend(t *testing.T, n alert.Notifier, p *alert.Page) {
	t.Helper()
	if _, err := n.Send(context.Background(), p, ""); err != nil {
		t.Fatalf("Send(%s): %v", p.Kind, err)
	}
}

func TestAlertmanagerAlertContract(t *testing.T) {
	am := newFakeAM(t)
	now := time.Date(2026, 11, 23, 2, 16, 30, 0, time.UTC)
	n := newAMNotifier(t, am.URL, now)
	if n.Type() != Type || n.Name() != "am" {
		t.Fatalf("name %q type %q", n.Name(), n.Type())
	}

	trig := alerttest.SamplePage(alert.Trigger)
	trig.Labels["region"] = "eu-west-1" // never part of the identity
	trig.Labels["rule"] = trig.Rule
	trig.Links = append(trig.Links, alert.Link{Name: "prober", URL: "http://prober.test/runs/4bf92f35"})
	rem := alerttest.SamplePage(alert.Reminder)
	rem.Labels, rem.Links = trig.Labels, trig.Links
	rem.Summary = "still firing: " + rem.Summary
	res := alerttest.SamplePage(alert.Resolve)
	res.Labels, res.Links = trig.Labels, trig.Links
	res.Summary = "checkout failing in 3/3 regions; step pay failed" // as the manager retells it: no duration of its own
	for _, p := range []*alert.Page{trig, rem, res} {
		amSend(t, n, p)
	}
	posts := am.received()
	if len(posts) != 3 {
		t.Fatalf("%d posts, want 3", len(posts))
	}
	wantLabels := map[string]string{"alertname": "checkout_failing", "severity": "critical", "dedup_key": "checkout_failing/flow=checkout",
		"team": "payments", "tier": "critical"}
	for i, p := range posts {
		if len(p.Alerts) != 1 {
			t.Fatalf("post %d: %d alerts", i, len(p.Alerts))
		}
		a := p.Alerts[0]
		if !mapsEqual(a.Labels, wantLabels) {
			t.Errorf("post %d labels %v, want %v (the same for trigger, refresh and resolve)", i, a.Labels, wantLabels)
		}
		if a.StartsAt != "2026-11-23T02:14:00Z" {
			t.Errorf("post %d startsAt %s, want Page.Since", i, a.StartsAt)
		}
		if a.GeneratorURL != "http://prober.test/runs/4bf92f35" {
			t.Errorf("post %d generatorURL %q", i, a.GeneratorURL)
		}
		ann := a.Annotations
		if ann["dashboard"] != "https://grafana.example/d/checkout" || ann["logs"] != "https://logs.example/search?q=4bf92f35" ||
			ann["source"] != "prober (regions a, b, c)" || ann["component"] != "checkout" || ann["class"] != "swallowed_error" ||
			ann["group"] != "payments" {
			t.Errorf("post %d annotations %v", i, ann)
		}
		for _, d := range []string{"step: pay", "gateway success: 0% (was 99.8%)", "trace: 4bf92f3577b34da6a3ce929d0e0e4736", "step: confirm"} {
			if !strings.Contains(ann["description"], d) {
				t.Errorf("post %d description lacks %q: %q", i, d, ann["description"])
			}
		}
	}
	// Firing: endsAt a horizon ahead of delivery, so Alertmanager resolves
	// it by itself if the refreshes stop. The refresh's summary describes
	// the alert, not the reminder.
	if got := posts[0].Alerts[0]; got.EndsAt != now.Add(4*time.Minute).Format(time.RFC3339) ||
		got.Annotations["summary"] != alerttest.SamplePage(alert.Trigger).Summary {
		t.Errorf("trigger endsAt %s summary %q", got.EndsAt, got.Annotations["summary"])
	}
	if got := posts[1].Alerts[0]; got.EndsAt != now.Add(amHorizon).Format(time.RFC3339) || got.Annotations["summary"] != alerttest.SamplePage(alert.Trigger).Summary {
		t.Errorf("reminder endsAt %s summary %q", got.EndsAt, got.Annotations["summary"])
	}
	// Resolve: ended when it resolved (Page.At), already past.
	if got := posts[2].Alerts[0]; got.EndsAt != "2026-11-23T02:16:00Z" || got.Annotations["summary"] != res.Summary {
		t.Errorf("resolve endsAt %s summary %q", got.EndsAt, got.Annotations["summary"])
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// What Alertmanager would reject in a whole alert for one bad name or time
// is made valid rather than dead-lettered.
func TestAlertmanagerSanitizes(t *testing.T) {
	am := newFakeAM(t)
	now := time.Date(2026, 11, 23, 2, 16, 30, 0, time.UTC)
	n := newAMNotifier(t, am.URL, now)
	p := &alert.Page{Kind: alert.Trigger, Labels: map[string]string{"p99-latency": "x", "5xx": "y", "empty": "", "dépendance": "z", "severity": "mine"},
		Details: []alert.Field{{Name: "trace ids", Value: "aa bb"}, {Name: "regions failing", Value: "2 of 3"}},
		Links:   []alert.Link{{Name: "run book", URL: "https://wiki/rb"}, {Name: "run-book", URL: "https://wiki/rb2"}, {Name: "prober", URL: "::bad"}},
		At:      now.Add(time.Hour), // a clock ahead of ours: startsAt must not pass endsAt
	}
	amSend(t, n, p)
	res := *p
	res.Kind = alert.Resolve
	amSend(t, n, &res)
	posts := am.received()
	a := posts[0].Alerts[0]
	want := map[string]string{"p99_latency": "x", "_5xx": "y", "d__pendance": "z", "alertname": "prober", "severity": "critical"}
	if !mapsEqual(a.Labels, want) {
		t.Errorf("labels %v, want %v", a.Labels, want)
	}
	if a.Annotations["trace_ids"] != "aa bb" || a.Annotations["run_book"] != "https://wiki/rb" || a.Annotations["run_book_2"] != "https://wiki/rb2" ||
		!strings.Contains(a.Annotations["description"], "regions failing: 2 of 3") {
		t.Errorf("annotations %v", a.Annotations)
	}
	if a.GeneratorURL != "http://prober.test/" {
		t.Errorf("generatorURL %q: want the status URL when the page's link is not a URI", a.GeneratorURL)
	}
	if r := posts[1].Alerts[0]; r.EndsAt != now.Format(time.RFC3339) || r.StartsAt != r.EndsAt {
		t.Errorf("resolve startsAt %s endsAt %s: want both now (never in the future)", r.StartsAt, r.EndsAt)
	}
}

func TestAlertmanagerURL(t *testing.T) {
	for raw, want := range map[string]string{
		"http://am:9093":                         "http://am:9093/api/v2/alerts",
		"http://am:9093/":                        "http://am:9093/api/v2/alerts",
		"https://am.example/alertmanager":        "https://am.example/alertmanager/api/v2/alerts",
		"http://am:9093/api/v2/alerts":           "http://am:9093/api/v2/alerts",
		"http://u:p4ss@am:9093/api/v2/alerts/?x": "http://u:p4ss@am:9093/api/v2/alerts",
	} {
		got, err := alertmanagerEndpoint(raw)
		if err != nil || got != want {
			t.Errorf("%q -> %q, %v; want %q", raw, got, err, want)
		}
	}
	for _, bad := range []string{"", "am:9093", "ftp://am", "http://", "http://u:s3cretpw@%zz"} {
		_, err := (Plugin{}).New(&config.Notifier{Name: "am", Type: Type, Spec: &Spec{URL: bad}}, alert.NotifierOptions{})
		if err == nil {
			t.Errorf("%q accepted", bad)
		} else if strings.Contains(err.Error(), "s3cretpw") {
			t.Errorf("error leaks the password: %v", err)
		}
	}
}

func TestAlertmanagerErrorClasses(t *testing.T) {
	tests := []struct {
		name       string
		fault      *fakeAMFault
		path       string // appended to the notifier's URL
		permanent  bool
		status     int
		retryAfter time.Duration
		msg        string
	}{
		{name: "400 keeps Alertmanager's text", fault: &fakeAMFault{400, `"invalid label set: invalid name \"a b\""`, ""}, permanent: true, status: 400, msg: `invalid label set: invalid name "a b"`},
		{name: "400 parse error", fault: &fakeAMFault{400, `{"code":400,"message":"parsing alerts body failed"}`, ""}, permanent: true, status: 400, msg: "parsing alerts body failed"},
		{name: "422 schema", fault: &fakeAMFault{422, `{"code":601,"message":"0.generatorURL in body must be of type uri"}`, ""}, permanent: true, status: 422, msg: "must be of type uri"},
		{name: "404 wrong prefix", path: "/wrong", permanent: true, status: 404},
		{name: "429 with Retry-After", fault: &fakeAMFault{429, "slow down", "7"}, status: 429, retryAfter: 7 * time.Second, msg: "slow down"},
		{name: "500", fault: &fakeAMFault{500, `"store failed"`, ""}, status: 500, msg: "store failed"},
		{name: "503 from a proxy", fault: &fakeAMFault{503, "<html>\n<body>upstream down</body></html>", ""}, status: 503, msg: "upstream down"},
		{name: "408", fault: &fakeAMFault{408, "", ""}, status: 408, msg: "Request Timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			am := newFakeAM(t)
			u, _ := url.Parse(am.URL)
			u.User = url.UserPassword("prober", "s3cretpw")
			n := newAMNotifier(t, u.String()+tt.path, time.Time{})
			if tt.fault != nil {
				am.failNext(tt.fault.status, tt.fault.body, tt.fault.retryAfter)
			}
			_, err := n.Send(context.Background(), alerttest.SamplePage(alert.Trigger), "")
			var de *alert.DeliveryError
			if !errors.As(err, &de) {
				t.Fatalf("Send = %v, want a *alert.DeliveryError", err)
			}
			if de.Permanent != tt.permanent || de.Status != tt.status || de.RetryAfter != tt.retryAfter || !strings.Contains(de.Error(), tt.msg) {
				t.Errorf("got %+v (%q); want permanent=%v status=%d retryAfter=%v msg~%q", de, de.Error(), tt.permanent, tt.status, tt.retryAfter, tt.msg)
			}
			alerttest.NoSecrets(t, err.Error(), "s3cretpw")
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		am := newFakeAM(t)
		am.Close()
		_, err := newAMNotifier(t, "http://prober:s3cretpw@"+strings.TrimPrefix(am.URL, "http://"), time.Time{}).Send(context.Background(), alerttest.SamplePage(alert.Resolve), "")
		var de *alert.DeliveryError
		if !errors.As(err, &de) || de.Permanent || de.Status != 0 || !strings.Contains(err.Error(), "Alertmanager unreachable") {
			t.Errorf("Send = %#v", err)
		}
		alerttest.NoSecrets(t, err.Error(), "s3cretpw")
	})
	t.Run("timeout", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}))
		defer srv.Close()
		n := newAMNotifier(t, srv.URL, time.Time{})
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := n.Send(ctx, alerttest.SamplePage(alert.Trigger), "")
		var de *alert.DeliveryError
		if !errors.As(err, &de) || de.Permanent {
			t.Errorf("Send = %#v, want retryable", err)
		}
	})
	t.Run("unknown kind", func(t *testing.T) {
		p := alerttest.SamplePage(alert.Trigger)
		p.Kind = "poke"
		_, err := newAMNotifier(t, "http://127.0.0.1:1", time.Time{}).Send(context.Background(), p, "")
		var de *alert.DeliveryError
		if !errors.As(err, &de) || !de.Permanent {
			t.Errorf("Send = %#v", err)
		}
	})
}

// Alertmanager HA, for real: two Alertmanager 0.25 peers gossiping on
// loopback, two evaluator replicas (each with its own state, outbox and
// dispatcher, reporting from different regions) sending the same alert to
// both peers, one notifier per peer, as recommended. The webhook receiver
// behind the cluster must see one firing and one resolved notification:
// the peers dedup through their gossiped notification log. Then an
// evaluator that dies mid-incident: with no refresh, Alertmanager resolves
// the alert by itself at endsAt.
func TestAlertmanagerHAClusterDedup(t *testing.T) {
	bin := alertmanagerBinary(t)
	hook := newWebhookRecorder(t)
	cfg := filepath.Join(t.TempDir(), "alertmanager.yml")
	// Short waits so the test is quick, in production's proportions:
	// group_interval longer than the peer timeout (5m and 15s by default),
	// or the second peer, whose flushes each wait out the peer timeout,
	// drifts off the first's rhythm and can judge a stale snapshot (firing)
	// against the first's newer log entry (resolved) and notify it again.
	// repeat_interval long so any second notification is a dedup failure.
	err := os.WriteFile(cfg, []byte(fmt.Sprintf(`route:
  receiver: hook
  group_by: [dedup_key]
  group_wait: 1s
  group_interval: 3s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: %s/hook
        send_resolved: true
`, hook.URL)), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	am1 := startAlertmanager(t, bin, cfg, "am1", "")
	am2 := startAlertmanager(t, bin, cfg, "am2", am1.cluster)
	waitClusterReady(t, 20*time.Second, am1, am2)
	start := time.Now()
	t.Logf("cluster ready")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := rule("checkout_failing", func(r *config.Rule) { r.For, r.KeepFiringFor = 0, 0 })
	var replicas []*alert.Manager
	for i, region := range []string{"a", "b"} {
		a := &config.Alerting{
			Notifiers: []*config.Notifier{{Name: "am1", Type: Type, Spec: &Spec{URL: am1.URL}, Traits: amTraits}, {Name: "am2", Type: Type, Spec: &Spec{URL: am2.URL}, Traits: amTraits}},
			Routes:    map[string][]string{"critical": {"am1", "am2"}},
			Rules:     []*config.Rule{r},
		}
		db, err := alert.OpenDB(filepath.Join(t.TempDir(), fmt.Sprintf("replica%d.db", i)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		var ns []alert.Notifier
		for _, nc := range a.Notifiers {
			n, err := (Plugin{}).New(nc, alert.NotifierOptions{StatusURL: "http://prober-" + region + ".test/"})
			if err != nil {
				t.Fatal(err)
			}
			ns = append(ns, n)
		}
		d := alert.NewDispatcher(db, ns, fastOptions())
		done := make(chan struct{})
		go func() { defer close(done); d.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		replicas = append(replicas, alert.NewManager(db, a, d.Kick, alert.ManagerOptions{Source: "prober (region " + region + ")", StatusURL: "http://prober-" + region + ".test/"}))
	}
	// Each replica sees the incident from its own region: the region label
	// must not split the alert.
	eval := func(st golden.Status, region string) golden.Evaluation {
		return golden.Evaluation{Rule: r, Status: st, Severity: "critical", Value: "failing in 2/3 regions",
			Labels:   map[string]string{"rule": r.Name, "flow": "checkout", "region": region},
			Summary:  "checkout failing in 2/3 regions; trace 4bf92f3577b34da6a3ce929d0e0e4736",
			Evidence: golden.Evidence{Flow: "checkout", Step: "pay", TraceIDs: []string{"4bf92f3577b34da6a3ce929d0e0e4736"}}}
	}
	process := func(st golden.Status) {
		for i, m := range replicas {
			if err := m.Process(ctx, []golden.Evaluation{eval(st, []string{"a", "b"}[i])}, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
	}
	key := alert.Key(r.Name, map[string]string{"rule": r.Name, "flow": "checkout"})
	// Long enough for the second peer to wait out its peer timeout (1s per
	// position) and more than a group interval: a duplicate would have come.
	const quiet = 4 * time.Second

	process(golden.Firing)
	hook.waitFor(t, 20*time.Second, "firing", key, 1)
	waitForAlertIn(t, am1, key)
	waitForAlertIn(t, am2, key)
	time.Sleep(quiet)
	if got := hook.count("firing", key); got != 1 {
		t.Fatalf("%d firing notifications for one alert from two replicas through two peers, want 1:\n%s", got, hook.dump())
	}
	n := hook.find("firing", key)
	if lb := n.Labels; lb["alertname"] != r.Name || lb["flow"] != "checkout" || lb["severity"] != "critical" || lb["dedup_key"] != key ||
		lb["region"] != "" || lb["rule"] != "" {
		t.Errorf("notified labels %v", lb)
	}

	t.Logf("+%v one firing notification", time.Since(start).Round(time.Millisecond))
	process(golden.OK)
	hook.waitFor(t, 20*time.Second, "resolved", key, 1)
	time.Sleep(quiet)
	if f, r := hook.count("firing", key), hook.count("resolved", key); f != 1 || r != 1 {
		t.Fatalf("%d firing and %d resolved notifications, want 1 and 1:\n%s", f, r, hook.dump())
	}

	t.Logf("+%v one resolved notification", time.Since(start).Round(time.Millisecond))

	// An evaluator that dies mid-incident sends no resolve: its last
	// refresh's endsAt ends the alert.
	dying := &alert.Page{Kind: alert.Trigger, DedupKey: "prober/gateway_success/dependency=bank-gateway", Rule: "gateway_success", Severity: "critical",
		Summary: "bank-gateway success 0%", Labels: map[string]string{"dependency": "bank-gateway"}, At: time.Now(), Since: time.Now()}
	for _, peer := range []*amProcess{am1, am2} {
		n := newAMNotifier(t, peer.URL, time.Time{})
		n.horizon = 3 * time.Second
		amSend(t, n, dying)
	}
	hook.waitFor(t, 20*time.Second, "firing", dying.DedupKey, 1)
	hook.waitFor(t, 20*time.Second, "resolved", dying.DedupKey, 1)
	time.Sleep(quiet)
	if f, r := hook.count("firing", dying.DedupKey), hook.count("resolved", dying.DedupKey); f != 1 || r != 1 {
		t.Fatalf("dead evaluator: %d firing and %d resolved notifications, want 1 and 1:\n%s", f, r, hook.dump())
	}
	t.Logf("+%v a dead evaluator's alert resolved by its endsAt:\n%s", time.Since(start).Round(time.Millisecond), hook.dump())
}

// alertmanagerBinary finds Debian's Alertmanager, or skips; scripts/test.sh
// installs it and sets PROBER_REQUIRE_PROMETHEUS=1, so in CI a missing one
// fails.
func alertmanagerBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real Alertmanager cluster")
	}
	for _, name := range []string{"prometheus-alertmanager", "alertmanager"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("PROBER_REQUIRE_PROMETHEUS") != "" {
		t.Fatal("prometheus-alertmanager not found; scripts/test.sh installs Debian's prometheus-alertmanager package")
	}
	t.Skip("prometheus-alertmanager not installed (apt-get install prometheus-alertmanager); scripts/test.sh installs it")
	return ""
}

type amProcess struct {
	name    string
	URL     string // web
	cluster string // host:port of its gossip
	logs    *alerttest.Buffer
}

// freeLoopbackPort returns a port free for TCP and UDP on 127.0.0.1 (the
// gossip uses both).
func freeLoopbackPort(t *testing.T) string {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err == nil {
			u.Close()
			return addr
		}
	}
	t.Fatal("no free loopback port for TCP and UDP")
	return ""
}

func startAlertmanager(t *testing.T, bin, cfg, name, peer string) *amProcess {
	t.Helper()
	p := &amProcess{name: name, URL: "http://" + freeLoopbackPort(t), cluster: freeLoopbackPort(t), logs: &alerttest.Buffer{}}
	args := []string{
		"--config.file=" + cfg,
		"--storage.path=" + t.TempDir(),
		"--web.listen-address=" + strings.TrimPrefix(p.URL, "http://"),
		"--cluster.listen-address=" + p.cluster,
		// Gossip fast and settle quickly: the defaults take a minute.
		"--cluster.gossip-interval=50ms",
		"--cluster.pushpull-interval=500ms",
		"--cluster.probe-interval=200ms",
		"--cluster.settle-timeout=5s",
		"--cluster.reconnect-interval=1s", // a join that raced the peer's start is retried soon
		// The peer at position 1 waits this long for position 0's
		// notification log before notifying itself (default 15s).
		"--cluster.peer-timeout=1s",
		"--log.level=debug",
	}
	if peer != "" {
		args = append(args, "--cluster.peer="+peer)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("%s (%s) log:\n%s", name, p.URL, p.logs.String())
		}
	})
	// Up before the next peer joins it: its gossip listens before its web.
	waitFor(t, 15*time.Second, name+" ready", func() bool {
		resp, err := http.Get(p.URL + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

func amStatus(p *amProcess) (status string, peers int) {
	resp, err := http.Get(p.URL + "/api/v2/status")
	if err != nil {
		return "", 0
	}
	defer resp.Body.Close()
	var st struct {
		Cluster struct {
			Status string            `json:"status"`
			Peers  []json.RawMessage `json:"peers"`
		} `json:"cluster"`
	}
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return "", 0
	}
	return st.Cluster.Status, len(st.Cluster.Peers)
}

func waitClusterReady(t *testing.T, timeout time.Duration, peers ...*amProcess) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for _, p := range peers {
		for {
			st, n := amStatus(p)
			if st == "ready" && n == len(peers) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: cluster %q with %d peers after %v, want ready with %d", p.name, st, n, timeout, len(peers))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func waitForAlertIn(t *testing.T, p *amProcess, dedupKey string) {
	t.Helper()
	waitFor(t, 10*time.Second, p.name+" holding the alert", func() bool {
		resp, err := http.Get(p.URL + "/api/v2/alerts?filter=" + url.QueryEscape(fmt.Sprintf("dedup_key=%q", dedupKey)))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var alerts []json.RawMessage
		return json.NewDecoder(resp.Body).Decode(&alerts) == nil && len(alerts) == 1
	})
}

// webhookRecorder is the receiver behind the Alertmanager cluster: it
// records each notification's status and alerts (webhook payload version 4).
type webhookRecorder struct {
	*httptest.Server
	mu   sync.Mutex
	msgs []webhookMsg
}

type webhookMsg struct {
	Status string `json:"status"`
	Alerts []struct {
		Status string            `json:"status"`
		Labels map[string]string `json:"labels"`
	} `json:"alerts"`
	received time.Time
}

type webhookAlert struct {
	Status string
	Labels map[string]string
}

func newWebhookRecorder(t *testing.T) *webhookRecorder {
	w := &webhookRecorder{}
	w.Server = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var m webhookMsg
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			http.Error(rw, err.Error(), 400)
			return
		}
		m.received = time.Now()
		w.mu.Lock()
		w.msgs = append(w.msgs, m)
		w.mu.Unlock()
	}))
	t.Cleanup(w.Close)
	return w
}

// count is how many notifications carried the alert with dedupKey in
// status (firing or resolved).
func (w *webhookRecorder) count(status, dedupKey string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, m := range w.msgs {
		for _, a := range m.Alerts {
			if a.Status == status && a.Labels["dedup_key"] == dedupKey {
				n++
			}
		}
	}
	return n
}

func (w *webhookRecorder) find(status, dedupKey string) webhookAlert {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, m := range w.msgs {
		for _, a := range m.Alerts {
			if a.Status == status && a.Labels["dedup_key"] == dedupKey {
				return webhookAlert{a.Status, a.Labels}
			}
		}
	}
	return webhookAlert{}
}

func (w *webhookRecorder) waitFor(t *testing.T, timeout time.Duration, status, dedupKey string, n int) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for w.count(status, dedupKey) < n {
		if time.Now().After(deadline) {
			t.Fatalf("no %s notification for %s after %v:\n%s", status, dedupKey, timeout, w.dump())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (w *webhookRecorder) dump() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var b strings.Builder
	for _, m := range w.msgs {
		fmt.Fprintf(&b, "  %s %s:", m.received.Format("15:04:05.000"), m.Status)
		for _, a := range m.Alerts {
			fmt.Fprintf(&b, " [%s %v]", a.Status, a.Labels)
		}
		b.WriteString("\n")
	}
	return b.String()
}

var amTraits = config.NotifierTraits{StateSync: true}

func rule(name string, mut ...func(*config.Rule)) *config.Rule {
	r := &config.Rule{Name: name, Kind: config.FlowFailing, Severity: "critical", For: time.Minute, KeepFiringFor: 2 * time.Minute,
		FlowFailing: &config.FlowFailingRule{MinRegions: 1}}
	for _, m := range mut {
		m(r)
	}
	return r
}

func fastOptions() alert.DispatcherOptions {
	return alert.DispatcherOptions{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, PollInterval: 20 * time.Millisecond, SendTimeout: 5 * time.Second}
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The block decodes here with the texts config had for it.
func TestDecode(t *testing.T) {
	cfg, errs := alerttest.Load(t, `{am: {type: alertmanager, url: "http://am-0:9093", timeout: 3s}}`, "0123456789abcdef", Plugin{})
	if errs != nil {
		t.Fatal(errs)
	}
	n := cfg.Alerting.Notifiers[0]
	if s := n.Spec.(*Spec); s.URL != "http://am-0:9093" || !n.Traits.StateSync || n.Traits.Pages || n.Timeout != 3*time.Second {
		t.Errorf("am: %+v %+v", n, s)
	}
	for _, tt := range []struct{ block, want string }{
		{`{x: {type: alertmanager}}`, `probes.yaml:3:13: alertmanager notifier x needs a url`},
		{`{x: {type: alertmanager, url: "am:9093"}}`, "probes.yaml:3:13: alertmanager notifier x needs a url\nprobes.yaml:3:42: \"am:9093\" is not an absolute http:// or https:// URL"},
		{`{x: {type: alertmanager, url: "http://h/{{secret:S}}"}}`, "probes.yaml:3:13: alertmanager notifier x needs a url\nprobes.yaml:3:52: url cannot use {{...}}; secrets belong in routing_key, token or webhook_url"},
	} {
		_, errs := alerttest.Load(t, tt.block, "0123456789abcdef", Plugin{})
		if got := strings.Join(errs, "\n"); got != tt.want {
			t.Errorf("%s:\n%s\nwant:\n%s", tt.block, got, tt.want)
		}
	}
}
