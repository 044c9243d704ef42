package alert

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/golden"
)

var t0 = time.Date(2026, 11, 23, 2, 14, 0, 0, time.UTC)

func rule(name string, mut ...func(*config.Rule)) *config.Rule {
	r := &config.Rule{Name: name, Kind: config.FlowFailing, For: time.Minute, KeepFiringFor: 2 * time.Minute,
		Severity: "critical", FlowFailing: &config.FlowFailingRule{MinRegions: 1}}
	for _, m := range mut {
		m(r)
	}
	return r
}

// The traits config gives PagerDuty and Alertmanager notifiers.
var (
	pdTraits = config.NotifierTraits{Pages: true, NoNotes: true}
	amTraits = config.NotifierTraits{StateSync: true}
)

func alerting(rules ...*config.Rule) *config.Alerting {
	return &config.Alerting{
		RepeatInterval: 4 * time.Hour,
		Notifiers: []*config.Notifier{
			{Name: "pd", Type: "pagerduty", Traits: pdTraits}, {Name: "slack", Type: "slack"},
			{Name: "off", Type: "pagerduty", Traits: pdTraits, Disabled: "no key"},
		},
		Routes: map[string][]string{"critical": {"pd", "slack", "off"}, "warning": {"slack"}},
		Rules:  rules,
		Links:  []config.Link{{Name: "logs", URL: "https://logs.test/?q={trace_id}"}},
	}
}

type mgrHarness struct {
	t   *testing.T
	db  *DB
	m   *Manager
	now time.Time
}

func newMgrHarness(t *testing.T, a *config.Alerting) *mgrHarness {
	t.Helper()
	db := openNoSync(t, filepath.Join(t.TempDir(), "state", "prober.db"))
	return &mgrHarness{t: t, db: db, m: NewManager(db, a, nil, ManagerOptions{Source: "prober (region a)", StatusURL: "http://prober.test"}), now: t0}
}

func (h *mgrHarness) eval(r *config.Rule, st golden.Status, labels map[string]string, mut ...func(*golden.Evaluation)) golden.Evaluation {
	if labels == nil {
		labels = map[string]string{"rule": r.Name, "flow": "checkout"}
	}
	e := golden.Evaluation{Rule: r, Labels: labels, Status: st, Severity: r.Severity, Value: "failing in 1/1 regions",
		Summary: "checkout failing; step pay: json.status == \"success\": got \"processing\"; class swallowed_error; trace 4bf92f3577b34da6a3ce929d0e0e4736",
		Evidence: golden.Evidence{Flow: "checkout", Step: "pay", Dependency: "bank-gateway", Class: "swallowed_error",
			TraceIDs: []string{"4bf92f3577b34da6a3ce929d0e0e4736"}, RegionsFailing: []string{"a"}, RegionsTotal: 1, RegionsKnown: 1}}
	for _, m := range mut {
		m(&e)
	}
	return e
}

// openNoSync opens the state at path, closed at the end of the test, without
// fsync: these tests are about what the manager decides, on a fake clock,
// not about durability, and one fsync per cycle made them slow (the
// flapping test's 1,400 cycles took 16s, 1s without).
func openNoSync(t *testing.T, path string) *DB {
	t.Helper()
	db, err := OpenDB(path)
	if err != nil {
		t.Fatal(err)
	}
	db.bolt.NoSync = true
	t.Cleanup(func() { db.Close() })
	return db
}

// step advances the clock by d and processes evals.
func (h *mgrHarness) step(d time.Duration, evals ...golden.Evaluation) {
	h.t.Helper()
	h.now = h.now.Add(d)
	if err := h.m.Process(context.Background(), evals, h.now); err != nil {
		h.t.Fatal(err)
	}
}

// outbox returns and clears the pending notifications, as "notifier kind dedupkey".
func (h *mgrHarness) outbox() []string {
	h.t.Helper()
	var out []string
	err := h.db.Update(func(tx *Tx) error {
		ns, err := tx.Pending()
		if err != nil {
			return err
		}
		for _, n := range ns {
			out = append(out, n.Notifier+" "+string(n.Page.Kind)+" "+n.Page.DedupKey)
		}
		return deleteAll(tx, ns)
	})
	if err != nil {
		h.t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func (h *mgrHarness) pages() []*Notification {
	var ns []*Notification
	h.db.View(func(tx *Tx) error {
		var err error
		ns, err = tx.Pending()
		return err
	})
	return ns
}

func (h *mgrHarness) states() []*State {
	s, err := h.m.Alerts()
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func TestLifecycle(t *testing.T) {
	r := rule("checkout_failing")
	h := newMgrHarness(t, alerting(r))
	key := Key(r.Name, map[string]string{"rule": r.Name, "flow": "checkout"})
	if key != "prober/checkout_failing/flow=checkout" {
		t.Fatalf("key %q", key)
	}
	h.step(0, h.eval(r, golden.Firing, nil))
	if s := h.states(); len(s) != 1 || s[0].Phase != Pending || len(h.outbox()) != 0 {
		t.Fatalf("first firing evaluation: %+v", s)
	}
	h.step(30*time.Second, h.eval(r, golden.Firing, nil))
	if len(h.outbox()) != 0 {
		t.Fatal("paged before for elapsed")
	}
	h.step(30*time.Second, h.eval(r, golden.Firing, nil))
	ns := h.pages()
	if got := h.outbox(); !slices.Equal(got, []string{"pd trigger " + key, "slack trigger " + key}) {
		t.Fatalf("trigger: %v", got)
	}
	p := ns[0].Page
	if !strings.Contains(p.Summary, "pay") || p.Severity != "critical" || p.Class != "swallowed_error" || p.Component != "checkout" ||
		p.Source != "prober (region a), failing in a" {
		t.Errorf("page %+v", p)
	}
	if len(p.Links) != 2 || p.Links[0].URL != "https://logs.test/?q=4bf92f3577b34da6a3ce929d0e0e4736" ||
		p.Links[1].URL != "http://prober.test/runs/4bf92f3577b34da6a3ce929d0e0e4736?flow=checkout" {
		t.Errorf("links %+v", p.Links)
	}
	// Still firing, unknown for a while, briefly OK: no new page.
	h.step(time.Minute, h.eval(r, golden.Firing, nil))
	h.step(time.Minute, h.eval(r, golden.Unknown, nil))
	h.step(time.Minute, h.eval(r, golden.OK, nil)) // LastTrue was 2m ago: keep_firing_for 2m passed
	if got := h.outbox(); !slices.Equal(got, []string{"pd resolve " + key, "slack resolve " + key}) {
		t.Fatalf("resolve: %v", got)
	}
	if len(h.states()) != 0 {
		t.Fatal("state kept after resolve")
	}
}

func TestHysteresisAndCancel(t *testing.T) {
	r := rule("f", func(r *config.Rule) { r.KeepFiringFor = 5 * time.Minute })
	h := newMgrHarness(t, alerting(r))
	// Pending then OK: cancelled silently.
	h.step(0, h.eval(r, golden.Firing, nil))
	h.step(10*time.Second, h.eval(r, golden.OK, nil))
	if len(h.states()) != 0 || len(h.outbox()) != 0 {
		t.Fatal("pending alert not cancelled quietly")
	}
	// Firing, then flapping OK/firing within keep_firing_for: one page.
	h.step(0, h.eval(r, golden.Firing, nil))
	h.step(time.Minute, h.eval(r, golden.Firing, nil))
	if n := len(h.outbox()); n != 2 {
		t.Fatalf("%d notifications at fire", n)
	}
	for i := 0; i < 6; i++ {
		st := golden.OK
		if i%2 == 1 {
			st = golden.Firing
		}
		h.step(time.Minute, h.eval(r, st, nil))
	}
	if got := h.outbox(); len(got) != 0 {
		t.Fatalf("flapping paged again: %v", got)
	}
}

func TestGroupPagesOnce(t *testing.T) {
	flow := rule("checkout_failing", func(r *config.Rule) { r.Group = "checkout" })
	gw := rule("gateway_success", func(r *config.Rule) { r.Group = "checkout"; r.Kind = config.DependencySuccess })
	h := newMgrHarness(t, alerting(flow, gw))
	gwLabels := map[string]string{"rule": gw.Name, "dependency": "bank-gateway"}
	h.step(0, h.eval(flow, golden.Firing, nil))
	h.step(30*time.Second, h.eval(flow, golden.Firing, nil), h.eval(gw, golden.Firing, gwLabels))
	h.step(30*time.Second, h.eval(flow, golden.Firing, nil), h.eval(gw, golden.Firing, gwLabels))
	incident := Key("group:checkout", nil)
	if got := h.outbox(); !slices.Equal(got, []string{"pd trigger " + incident, "slack trigger " + incident}) {
		t.Fatalf("first: %v", got)
	}
	h.step(30*time.Second, h.eval(flow, golden.Firing, nil), h.eval(gw, golden.Firing, gwLabels))
	// The gateway alert joins: a note in the incident, no new trigger.
	if got := h.outbox(); !slices.Equal(got, []string{"pd reminder " + incident, "slack reminder " + incident}) {
		t.Fatalf("join: %v", got)
	}
	// The flow heals first: the incident stays open for the gateway, and
	// the Slack thread says so.
	h.step(3*time.Minute, h.eval(flow, golden.OK, nil), h.eval(gw, golden.Firing, gwLabels))
	ns := h.pages()
	if got := h.outbox(); !slices.Equal(got, []string{"slack reminder " + incident}) ||
		ns[0].Page.Note != "checkout_failing resolved (condition cleared); still firing: gateway_success (critical)" {
		t.Fatalf("resolved while a member still fires: %v %+v", got, ns)
	}
	h.step(3*time.Minute, h.eval(flow, golden.OK, nil), h.eval(gw, golden.OK, gwLabels))
	if got := h.outbox(); !slices.Equal(got, []string{"pd resolve " + incident, "slack resolve " + incident}) {
		t.Fatalf("resolve: %v", got)
	}
}

func TestInhibition(t *testing.T) {
	gw := rule("gateway_success", func(r *config.Rule) { r.Kind = config.DependencySuccess; r.Inhibits = []string{"checkout_failing"} })
	flow := rule("checkout_failing")
	h := newMgrHarness(t, alerting(gw, flow))
	gwLabels := map[string]string{"rule": gw.Name, "dependency": "bank-gateway"}
	for i := 0; i < 3; i++ {
		h.step(30*time.Second, h.eval(gw, golden.Firing, gwLabels), h.eval(flow, golden.Firing, nil))
	}
	got := h.outbox()
	gwKey := Key(gw.Name, gwLabels)
	if !slices.Equal(got, []string{"pd trigger " + gwKey, "slack trigger " + gwKey}) {
		t.Fatalf("inhibition: %v", got)
	}
	for _, s := range h.states() {
		if s.Rule == flow.Name && s.Held != "inhibited by gateway_success" {
			t.Errorf("flow alert held %q", s.Held)
		}
	}
	// A flow failing at another dependency is not held.
	other := func(e *golden.Evaluation) { e.Evidence.Dependency = "inventory" }
	h2 := newMgrHarness(t, alerting(gw, flow))
	for i := 0; i < 3; i++ {
		h2.step(30*time.Second, h2.eval(gw, golden.Firing, gwLabels), h2.eval(flow, golden.Firing, nil, other))
	}
	if n := len(h2.outbox()); n != 4 {
		t.Fatalf("%d notifications, want both alerts paging", n)
	}
}

func TestSilencesAndMaintenance(t *testing.T) {
	r := rule("checkout_failing")
	a := alerting(r)
	a.Silences = []config.Silence{{Matchers: map[string]string{"flow": "checkout"}, Starts: t0, Ends: t0.Add(5 * time.Minute)}}
	h := newMgrHarness(t, a)
	for i := 0; i < 4; i++ {
		h.step(time.Minute, h.eval(r, golden.Firing, nil))
	}
	if got := h.outbox(); len(got) != 0 {
		t.Fatalf("silenced alert paged: %v", got)
	}
	if s := h.states(); len(s) != 1 || !strings.HasPrefix(s[0].Held, "silenced until") {
		t.Fatalf("state %+v", s)
	}
	h.step(2*time.Minute, h.eval(r, golden.Firing, nil)) // silence over, still firing: page now
	if n := len(h.outbox()); n != 2 {
		t.Fatalf("%d notifications after the silence", n)
	}

	// A maintenance window every day at 02:00 for an hour.
	a2 := alerting(r)
	a2.Maintenance = []config.Maintenance{{Matchers: map[string]string{"rule": "checkout_failing"}, Cron: "0 2 * * *", Duration: time.Hour, Location: time.UTC}}
	h2 := newMgrHarness(t, a2)
	for i := 0; i < 3; i++ {
		h2.step(time.Minute, h2.eval(r, golden.Firing, nil))
	}
	if got := h2.outbox(); len(got) != 0 {
		t.Fatalf("paged in maintenance: %v", got)
	}

	// An API silence, stored and applied.
	h3 := newMgrHarness(t, alerting(r))
	if _, err := h3.m.AddSilence(SilenceRecord{Matchers: map[string]string{}, Ends: time.Now().Add(time.Hour)}); err == nil {
		t.Fatal("empty matchers accepted")
	}
	sil, err := h3.m.AddSilence(SilenceRecord{Matchers: map[string]string{"flow": "checkout"}, Starts: t0, Ends: t0.Add(time.Hour), Comment: "deploy"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		h3.step(time.Minute, h3.eval(r, golden.Firing, nil))
	}
	if got := h3.outbox(); len(got) != 0 {
		t.Fatalf("paged under an API silence: %v", got)
	}
	if err := h3.m.RemoveSilence(sil.ID); err != nil {
		t.Fatal(err)
	}
	h3.step(time.Minute, h3.eval(r, golden.Firing, nil))
	if n := len(h3.outbox()); n != 2 {
		t.Fatalf("%d notifications after removing the silence", n)
	}
}

func TestEscalationRemovedRuleAndRestart(t *testing.T) {
	r := rule("checkout_failing", func(r *config.Rule) { r.For = 0 })
	h := newMgrHarness(t, alerting(r))
	warn := func(e *golden.Evaluation) { e.Severity = "warning" }
	h.step(0, h.eval(r, golden.Firing, nil, warn))
	key := Key(r.Name, map[string]string{"flow": "checkout"})
	if got := h.outbox(); !slices.Equal(got, []string{"slack trigger " + key}) {
		t.Fatalf("degraded: %v", got)
	}
	h.step(time.Minute, h.eval(r, golden.Firing, nil)) // now critical: PagerDuty joins
	if got := h.outbox(); !slices.Equal(got, []string{"pd trigger " + key}) {
		t.Fatalf("escalation: %v", got)
	}
	// A restart: a new manager over the same database pages nothing new.
	m2 := NewManager(h.db, alerting(r), nil, ManagerOptions{})
	h.m = m2
	h.step(time.Minute, h.eval(r, golden.Firing, nil))
	if got := h.outbox(); len(got) != 0 {
		t.Fatalf("restart paged again: %v", got)
	}
	// The rule is removed by a reload: the alert resolves to both channels.
	m2.SetConfig(alerting())
	h.step(time.Minute)
	if got := h.outbox(); !slices.Equal(got, []string{"pd resolve " + key, "slack resolve " + key}) {
		t.Fatalf("removed rule: %v", got)
	}
}

func TestUnknownKeepsFiring(t *testing.T) {
	r := rule("f", func(r *config.Rule) { r.For = 0; r.KeepFiringFor = 0 })
	h := newMgrHarness(t, alerting(r))
	h.step(0, h.eval(r, golden.Firing, nil))
	h.outbox()
	// The source fails: one Unknown evaluation without the flow label.
	for i := 0; i < 5; i++ {
		h.step(time.Hour, golden.Evaluation{Rule: r, Labels: map[string]string{"rule": "f"}, Status: golden.Unknown})
	}
	if got := h.outbox(); len(got) != 0 || len(h.states()) != 1 {
		t.Fatalf("missing data resolved the alert: %v", got)
	}
}

func TestKeyLength(t *testing.T) {
	long := map[string]string{"query": strings.Repeat("x", 400)}
	k := Key("promql_rule", long)
	if len(k) > 255 || !strings.HasPrefix(k, "prober/promql_rule/") || k != Key("promql_rule", long) {
		t.Fatalf("key %q", k)
	}
	if Key("r", map[string]string{"region": "a", "flow": "f"}) != Key("r", map[string]string{"region": "b", "flow": "f"}) {
		t.Fatal("region changes the key")
	}
}

func deleteAll(tx *Tx, ns []*Notification) error {
	for _, n := range ns {
		if err := tx.removeNotification(n.ID); err != nil {
			return err
		}
	}
	return nil
}

// The lifecycle follows a notifier's traits, not its type: a registered
// type that keeps state like Alertmanager gets the periodic refresh, and
// an Alertmanager without the trait (as config never builds it) does not.
func TestStateSyncIsATraitNotAType(t *testing.T) {
	r := rule("checkout_failing", func(r *config.Rule) { r.For = 0 })
	a := alerting(r)
	a.RepeatInterval = 0
	a.Notifiers = append(a.Notifiers, &config.Notifier{Name: "sync", Type: "somewhere", Traits: amTraits},
		&config.Notifier{Name: "plain", Type: "alertmanager"})
	a.Routes["critical"] = []string{"sync", "plain"}
	h := newMgrHarness(t, a)
	key := Key(r.Name, map[string]string{"rule": r.Name, "flow": "checkout"})
	h.step(0, h.eval(r, golden.Firing, nil))
	if got := h.outbox(); !slices.Equal(got, []string{"plain trigger " + key, "sync trigger " + key}) {
		t.Fatalf("trigger: %v", got)
	}
	h.step(SyncResend, h.eval(r, golden.Firing, nil))
	if got := h.outbox(); !slices.Equal(got, []string{"sync reminder " + key}) {
		t.Errorf("a minute later: %v, want the refresh to the state-synced notifier only", got)
	}
}
