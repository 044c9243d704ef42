package alert

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/golden"
)

// keyed gives an evaluation the key the engine computes for it
// (golden.Options{Key: Key}).
func keyed(e *golden.Evaluation) { e.Key = Key(e.Rule.Name, e.Labels) }

// A story over many flows, most passing with no alert, told with and
// without the engine's keys: the same pages and the same alerts.
func TestEvaluationKeysChangeNothing(t *testing.T) {
	flow := rule("checkout_failing", func(r *config.Rule) { r.Group = "checkout" })
	gw := rule("gateway_success", func(r *config.Rule) {
		r.Kind, r.Group, r.Inhibits = config.DependencySuccess, "checkout", []string{"slow"}
	})
	slow := rule("slow")
	gwLabels := map[string]string{"rule": gw.Name, "dependency": "bank-gateway"}
	// status of flow i at step n: flows 0 and 7 fail from step 1 to 6,
	// flow 3 flaps, flow 5 is unknown a while; the gateway fails from
	// step 2 to 5.
	status := func(i, n int) golden.Status {
		switch {
		case (i == 0 || i == 7) && n >= 1 && n <= 6:
			return golden.Firing
		case i == 3 && n%2 == 1:
			return golden.Firing
		case i == 5 && n >= 3 && n <= 4:
			return golden.Unknown
		}
		return golden.OK
	}
	type snapshot struct {
		outbox []string
		states []State
	}
	run := func(t *testing.T, mut ...func(*golden.Evaluation)) []snapshot {
		h := newMgrHarness(t, alerting(flow, gw, slow))
		var out []snapshot
		for n := range 10 {
			var evs []golden.Evaluation
			for i := range 50 {
				labels := map[string]string{"rule": flow.Name, "flow": fmt.Sprint("flow-", i)}
				evs = append(evs, h.eval(flow, status(i, n), labels, mut...))
			}
			st := golden.OK
			if n >= 2 && n <= 5 {
				st = golden.Firing
			}
			evs = append(evs, h.eval(gw, st, gwLabels, mut...), h.eval(slow, st, nil, mut...))
			h.step(40*time.Second, evs...)
			snap := snapshot{outbox: h.outbox()}
			for _, s := range h.states() {
				snap.states = append(snap.states, *s)
			}
			out = append(out, snap)
		}
		return out
	}
	without, with := run(t), run(t, keyed)
	if !reflect.DeepEqual(with, without) {
		t.Errorf("with keys:\n%+v\nwithout:\n%+v", with, without)
	}
	pages := 0
	for _, s := range without {
		pages += len(s.outbox)
	}
	if pages == 0 {
		t.Error("the story paged nothing: it tests nothing")
	}
}

// Of several evaluations of one label set in a cycle the last counts, as
// before OK evaluations of label sets without alerts were skipped.
func TestLastEvaluationOfAKeyCounts(t *testing.T) {
	r := rule("checkout_failing")
	tests := []struct {
		name    string
		pending bool // an alert is pending before the cycle
		evals   []golden.Status
		want    []Phase
	}{
		{"firing then OK", false, []golden.Status{golden.Firing, golden.OK}, nil},
		{"OK then firing", false, []golden.Status{golden.OK, golden.Firing}, []Phase{Pending}},
		{"firing then unknown", false, []golden.Status{golden.Firing, golden.Unknown}, nil},
		{"unknown then firing", false, []golden.Status{golden.Unknown, golden.Firing}, []Phase{Pending}},
		{"OK twice", false, []golden.Status{golden.OK, golden.OK}, nil},
		{"pending, OK", true, []golden.Status{golden.OK}, nil},
		{"pending, unknown", true, []golden.Status{golden.Unknown}, []Phase{Pending}},
		{"pending, OK then firing", true, []golden.Status{golden.OK, golden.Firing}, []Phase{Pending}},
		{"pending, firing then OK", true, []golden.Status{golden.Firing, golden.OK}, nil},
	}
	for _, tt := range tests {
		for _, withKey := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/key=%v", tt.name, withKey), func(t *testing.T) {
				h := newMgrHarness(t, alerting(r))
				var mut []func(*golden.Evaluation)
				if withKey {
					mut = append(mut, keyed)
				}
				if tt.pending {
					h.step(0, h.eval(r, golden.Firing, nil, mut...))
				}
				var evs []golden.Evaluation
				for _, st := range tt.evals {
					evs = append(evs, h.eval(r, st, nil, mut...))
				}
				h.step(10*time.Second, evs...)
				var got []Phase
				for _, s := range h.states() {
					got = append(got, s.Phase)
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("alerts %v, want %v", got, tt.want)
				}
			})
		}
	}
}

// matchesAlert matches silences and maintenance windows as matching over a
// copy of the labels with severity and rule set did.
func TestMatchesAlert(t *testing.T) {
	before := func(m map[string]string, s *State) bool {
		labels := maps.Clone(s.Labels)
		if labels == nil {
			labels = map[string]string{}
		}
		labels["severity"] = s.Severity
		labels["rule"] = s.Rule
		for k, v := range m {
			if labels[k] != v {
				return false
			}
		}
		return len(m) > 0
	}
	s := &State{Rule: "checkout_failing", Severity: "critical",
		Labels: map[string]string{"rule": "stale", "severity": "info", "flow": "checkout", "team": "payments"}}
	bare := &State{Rule: s.Rule, Severity: s.Severity}
	tests := []struct {
		name       string
		matchers   map[string]string
		want, bare bool
	}{
		{"no matchers match nothing", map[string]string{}, false, false},
		{"a label", map[string]string{"flow": "checkout"}, true, false},
		{"two labels", map[string]string{"flow": "checkout", "team": "payments"}, true, false},
		{"one of two differs", map[string]string{"flow": "checkout", "team": "search"}, false, false},
		{"the alert's severity, not a label's", map[string]string{"severity": "critical"}, true, true},
		{"a label's severity", map[string]string{"severity": "info"}, false, false},
		{"the alert's rule, not a label's", map[string]string{"rule": "checkout_failing"}, true, true},
		{"a label's rule", map[string]string{"rule": "stale"}, false, false},
		{"an empty value matches an absent label", map[string]string{"region": ""}, true, true},
		{"an absent label", map[string]string{"region": "eu-west-1"}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := matchesAlert(tt.matchers, s); got != tt.want || got != before(tt.matchers, s) {
				t.Errorf("matchesAlert(%v) = %v, want %v", tt.matchers, got, tt.want)
			}
			if got := matchesAlert(tt.matchers, bare); got != tt.bare || got != before(tt.matchers, bare) {
				t.Errorf("without labels: matchesAlert(%v) = %v, want %v", tt.matchers, got, tt.bare)
			}
		})
	}
}

// The prober_alerts gauge counts what the cycle committed.
func TestAlertsGaugeAfterProcess(t *testing.T) {
	r := rule("checkout_failing")
	a := alerting(r)
	a.Silences = []config.Silence{{Matchers: map[string]string{"flow": "search"}, Starts: t0, Ends: t0.Add(time.Hour)}}
	db, err := OpenDB(filepath.Join(t.TempDir(), "prober.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reg := prometheus.NewRegistry()
	h := &mgrHarness{t: t, db: db, m: NewManager(db, a, nil, ManagerOptions{Registerer: reg}), now: t0}
	evs := func(firing ...string) []golden.Evaluation {
		var out []golden.Evaluation
		for _, f := range []string{"checkout", "search", "signup", "login"} {
			st := golden.OK
			if slices.Contains(firing, f) {
				st = golden.Firing
			}
			out = append(out, h.eval(r, st, map[string]string{"rule": r.Name, "flow": f}, keyed))
		}
		return out
	}
	gauge := func() [3]float64 {
		var g [3]float64
		for i, st := range []string{"pending", "firing", "held"} {
			g[i] = metricValue(t, reg, "prober_alerts", map[string]string{"rule": r.Name, "state": st})
		}
		return g
	}
	h.step(0, evs("checkout", "search")...)
	h.step(time.Minute, evs("checkout", "search", "signup")...)
	if g := gauge(); g != [3]float64{1, 1, 1} { // signup pending, checkout firing, search silenced
		t.Errorf("gauge pending, firing, held: %v", g)
	}
	h.step(5*time.Minute, evs()...)
	if g := gauge(); g != [3]float64{0, 0, 0} {
		t.Errorf("after resolving: %v", g)
	}
}

// A cycle that leaves an alert's page alone stores it as decoding and
// encoding it would; a later resolve, by a manager started afresh, still
// retells the page of the firing.
func TestStoredPagesKeptAndRetold(t *testing.T) {
	r := rule("checkout_failing")
	h := newMgrHarness(t, alerting(r))
	key := Key(r.Name, map[string]string{"rule": r.Name, "flow": "checkout"})
	raw := func() []byte {
		var b []byte
		err := h.db.View(func(tx *Tx) error {
			b = slices.Clone(tx.b(bucketAlerts).Get([]byte(key)))
			return nil
		})
		if err != nil || b == nil {
			t.Fatalf("no stored alert %s: %v", key, err)
		}
		return b
	}
	h.step(0, h.eval(r, golden.Firing, nil, keyed))
	h.step(time.Minute, h.eval(r, golden.Firing, nil, keyed))
	h.outbox()
	fired := h.states()[0].Page
	if fired.Summary == "" || len(fired.Details) == 0 {
		t.Fatalf("no page rendered: %+v", fired)
	}
	for i, st := range []golden.Status{golden.Unknown, golden.Unknown} {
		h.m = NewManager(h.db, alerting(r), nil, ManagerOptions{Source: "prober (region a)", StatusURL: "http://prober.test"})
		h.step(10*time.Second, h.eval(r, st, nil, keyed))
		stored := raw()
		var s State
		if err := json.Unmarshal(stored, &s); err != nil {
			t.Fatal(err)
		}
		again, err := json.Marshal(&s)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(stored, again) {
			t.Errorf("cycle %d stored\n%s\nnot as encoded again\n%s", i, stored, again)
		}
		if !reflect.DeepEqual(s.Page, fired) {
			t.Errorf("cycle %d: page %+v, want the firing's %+v", i, s.Page, fired)
		}
	}
	h.m = NewManager(h.db, alerting(r), nil, ManagerOptions{Source: "prober (region a)", StatusURL: "http://prober.test"})
	h.step(3*time.Minute, h.eval(r, golden.OK, nil, keyed))
	ns := h.pages()
	if len(ns) != 2 {
		t.Fatalf("%d notifications, want the resolves", len(ns))
	}
	for _, n := range ns {
		p := n.Page
		// The story, with why it resolved first among the details; the
		// notifiers say for how long (Since to At).
		details := append([]Field{{Name: "resolved", Value: "condition cleared"}}, fired.Details...)
		if p.Kind != Resolve || p.Summary != fired.Summary || !p.At.Equal(h.now) ||
			!reflect.DeepEqual(p.Details, details) || !reflect.DeepEqual(p.Links, fired.Links) || !p.Since.Equal(fired.Since) {
			t.Errorf("resolve %+v\nof %+v", p, fired)
		}
	}
}
