package golden

import (
	"context"
	"maps"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/store"
)

// testKey stands in for alert.Key: any function of the rule and labels.
func testKey(rule string, labels map[string]string) string {
	var b strings.Builder
	b.WriteString(rule)
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		b.WriteString("/" + k + "=" + labels[k])
	}
	return b.String()
}

// checkIdents fails unless every evaluation's labels are exactly those of
// its rule and label set, and its key is testKey of them. A flow's
// evaluation that does not fire may have its key alone (Options.Key): the
// key must then be that of its flow's label set.
func checkIdents(t *testing.T, evs []Evaluation, id string) {
	t.Helper()
	for _, ev := range evs {
		want := maps.Clone(ev.Rule.Labels)
		if want == nil {
			want = map[string]string{}
		}
		want["rule"] = ev.Rule.Name
		labels := ev.Labels
		if labels == nil {
			if ev.Status == Firing || ev.Key == "" || id != "flow" || ev.Evidence.Flow == "" {
				t.Errorf("%s: no labels (%s, key %q, flow %q)", ev.Rule.Name, ev.Status, ev.Key, ev.Evidence.Flow)
				continue
			}
			labels = maps.Clone(want)
			labels["flow"] = ev.Evidence.Flow
		}
		for _, k := range []string{"flow", "dependency", "step", "silent_region"} {
			if v, ok := labels[k]; ok {
				want[k] = v
			}
		}
		if v := labels[id]; v == "" {
			t.Errorf("%s: no %s label: %v", ev.Rule.Name, id, labels)
		}
		if !maps.Equal(labels, want) {
			t.Errorf("%s labels %v, want %v", ev.Rule.Name, labels, want)
		}
		if k := testKey(ev.Rule.Name, labels); ev.Key != k {
			t.Errorf("%s key %q, want %q", ev.Rule.Name, ev.Key, k)
		}
	}
}

// flowsOf are the flows of flow_failing evaluations (their label sets'
// flow, checked by checkIdents).
func flowsOf(evs []Evaluation) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Evidence.Flow)
	}
	return out
}

// Label sets and keys are built once per engine and flow, and follow the
// flows the source lists from one cycle to the next: a flow that comes,
// goes and comes back is labelled as itself, and one gone is forgotten.
func TestLabelsFollowTheFlowSet(t *testing.T) {
	r := flowFailingRule(1, nil, "")
	r.Labels = map[string]string{"team": "payments", "flow": "overridden by the flow's own"}
	// A second rule over the same flows: its own label sets.
	r2 := flowFailingRule(2, nil, "")
	r2.Name, r2.Labels = "checkout_failing_everywhere", map[string]string{"team": "payments"}
	src := &fakeSource{states: map[string][]RegionState{}}
	e := NewEngine(&config.Alerting{Rules: []*config.Rule{r, r2}}, src, Options{Key: testKey})
	labelsOf := map[string]map[string]string{} // the first cycle's maps, by rule and flow
	for i, flows := range [][]string{
		{"checkout", "search", "signup"},
		{"checkout", "search", "signup"},
		{"checkout", "signup", "login"},
		{"search"},
		{},
		{"checkout", "search"},
	} {
		src.flows = flows
		for _, f := range flows {
			src.states[f] = []RegionState{passing("a")}
		}
		evs := e.Evaluate(context.Background(), now)
		if got := flowsOf(evs); !slices.Equal(got, append(slices.Clone(flows), flows...)) {
			t.Fatalf("cycle %d: flows %v, want %v twice", i, got, flows)
		}
		checkIdents(t, evs, "flow")
		for j, ev := range evs {
			// The first rule's passing flows are their keys alone; the
			// second's label sets are its own (few rules are a flow's
			// second), and kept.
			if (ev.Rule == r) != (j < len(flows)) || (ev.Labels == nil) != (ev.Rule == r) {
				t.Errorf("cycle %d: %s %v", i, ev.Rule.Name, ev.Labels)
			}
		}
		for _, ev := range evs {
			if ev.Rule != r2 {
				continue
			}
			id := ev.Rule.Name + "/" + ev.Labels["flow"]
			first, ok := labelsOf[id]
			if !ok {
				labelsOf[id] = ev.Labels
			} else if i == 1 && reflect.ValueOf(ev.Labels).UnsafePointer() != reflect.ValueOf(first).UnsafePointer() {
				// The same label set is the same map: nothing is rebuilt.
				t.Errorf("cycle 1: %s's labels were rebuilt", id)
			}
		}
		// Flows not listed are forgotten (but for a cycle that saw none).
		if s := e.scratch.Load(); len(flows) > 0 && len(s.flows) != len(flows) {
			t.Errorf("cycle %d: the engine keeps %d flows, not %d", i, len(s.flows), len(flows))
		}
	}
}

// A flow's label set under its flow_failing rule is its key (kept) and,
// when the evaluation fires, its labels (built then): a collection between
// cycles changes nothing, and flows that come and go in the meantime are
// labelled as themselves.
func TestLabelsAfterCollection(t *testing.T) {
	r := flowFailingRule(1, nil, "")
	r.Labels = map[string]string{"team": "payments"}
	src := &fakeSource{states: map[string][]RegionState{}}
	e := NewEngine(&config.Alerting{Rules: []*config.Rule{r}}, src, Options{Key: testKey})
	var want []Evaluation
	for i, flows := range [][]string{
		{"checkout", "search", "signup"},
		{"checkout", "search", "signup"},
		{"checkout", "login", "signup"}, // login in search's slot
		{"checkout", "login"},
		{"checkout", "login", "search", "signup"},
	} {
		src.flows = flows
		for _, f := range flows {
			src.states[f] = []RegionState{passing("a")}
		}
		src.states["checkout"] = []RegionState{failing("a", 3*time.Minute, 1, trace1)}
		want = deepCopy(e.Evaluate(context.Background(), now))
		runtime.GC() // what is not held now goes
		got := e.Evaluate(context.Background(), now)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("cycle %d: after a collection\n got %+v\nwant %+v", i, got, want)
		}
		if fl := flowsOf(got); !slices.Equal(fl, flows) {
			t.Errorf("cycle %d: flows %v, want %v", i, fl, flows)
		}
		checkIdents(t, got, "flow")
	}
	if want[0].Status != Firing || want[1].Status != OK {
		t.Errorf("statuses %s %s", want[0].Status, want[1].Status)
	}
}

// deepCopy copies what an evaluation holds that a later cycle could
// change, so that it can be compared with one.
func deepCopy(evs []Evaluation) []Evaluation {
	evs = slices.Clone(evs)
	for i := range evs {
		evs[i].Labels = maps.Clone(evs[i].Labels)
		evs[i].Evidence.TraceIDs = slices.Clone(evs[i].Evidence.TraceIDs)
		evs[i].Evidence.RegionsFailing = slices.Clone(evs[i].Evidence.RegionsFailing)
	}
	return evs
}

// A reload builds a new engine: its rules' labels and keys are its own,
// even for a rule of the same name over the same source.
func TestReloadRelabels(t *testing.T) {
	src := &fakeSource{flows: []string{"checkout"}, states: map[string][]RegionState{"checkout": {failing("a", 3*time.Minute, 1, trace1)}}}
	engine := func(team string) *Engine {
		ff := flowFailingRule(1, nil, "")
		ff.Labels = map[string]string{"team": team}
		dep := rule("gateway_success", config.DependencySuccess)
		dep.Labels = map[string]string{"team": team}
		dep.DependencySuccess = &config.DependencySuccessRule{Dependency: "bank-gateway", Below: 0.95}
		abs := rule("silent", config.Absent)
		abs.Labels = map[string]string{"team": team}
		abs.Absent = &config.AbsentRule{Regions: []string{"a", "b"}}
		return NewEngine(&config.Alerting{Rules: []*config.Rule{ff, dep, abs}}, src, Options{Key: testKey})
	}
	before := engine("payments")
	before.Evaluate(context.Background(), now)
	old := before.Evaluate(context.Background(), now) // from the cached label sets
	after := engine("checkout-team")
	for _, e := range []*Engine{after, after, before} {
		evs := e.Evaluate(context.Background(), now)
		want := "payments"
		if e == after {
			want = "checkout-team"
		}
		if len(evs) != 4 {
			t.Fatalf("%d evaluations", len(evs))
		}
		for _, ev := range evs {
			if ev.Labels["team"] != want || !strings.Contains(ev.Key, "/team="+want) || ev.Key != testKey(ev.Rule.Name, ev.Labels) {
				t.Errorf("%s: labels %v key %q, want team %s", ev.Rule.Name, ev.Labels, ev.Key, want)
			}
		}
	}
	for _, ev := range old {
		if ev.Labels["team"] != "payments" {
			t.Errorf("an earlier cycle's labels changed: %v", ev.Labels)
		}
	}
}

// Region states are read into a buffer the next cycle reuses: what an
// earlier cycle's evaluations say must not change with it.
func TestEvidenceOutlivesTheCycle(t *testing.T) {
	st := store.New(10)
	for m := 10; m > 0; m-- {
		at := now.Add(-time.Duration(m) * time.Minute)
		observeSlot(st, "checkout", "a", at, m > 3, false, 1, "old")
		observeSlot(st, "signup", "a", at, true, true, 1, "old")
	}
	e := NewEngine(&config.Alerting{Rules: []*config.Rule{flowFailingRule(1, nil, "")}}, NewStoreSource(st, nil, nil), Options{Key: testKey})
	first := e.Evaluate(context.Background(), now)
	want := slices.Clone(first)
	for i := range want {
		want[i].Evidence.TraceIDs = slices.Clone(want[i].Evidence.TraceIDs)
		want[i].Evidence.RegionsFailing = slices.Clone(want[i].Evidence.RegionsFailing)
	}
	if first[0].Status != Firing || first[0].Evidence.TraceIDs[0] != "oldr1" {
		t.Fatalf("first cycle: %+v", first[0])
	}
	// Both flows change: checkout recovers, signup fails elsewhere.
	observeSlot(st, "checkout", "a", now, true, true, 1, "new")
	observeSlot(st, "signup", "b", now, false, false, 1, "new")
	second := e.Evaluate(context.Background(), now.Add(time.Minute))
	if second[0].Status != OK || second[1].Status != Firing || second[1].Evidence.TraceIDs[0] != "newr1" {
		t.Fatalf("second cycle: %+v", second)
	}
	if !reflect.DeepEqual(first, want) {
		t.Errorf("the first cycle's evaluations changed:\n got %+v\nwant %+v", first, want)
	}
}

// AppendEvaluations appends (what dst holds stays) and gives what Evaluate
// gives.
func TestAppendEvaluations(t *testing.T) {
	st, _ := benchStore(50)
	e := NewEngine(&config.Alerting{Rules: []*config.Rule{flowFailingRule(1, nil, "")}}, NewStoreSource(st, nil, nil), Options{Key: testKey})
	want := e.Evaluate(context.Background(), now)
	mark := Evaluation{Value: "kept"}
	buf := []Evaluation{mark}
	for i := range 3 {
		buf = e.AppendEvaluations(context.Background(), buf[:1], now)
		if buf[0].Value != "kept" || !reflect.DeepEqual(buf[1:], want) {
			t.Fatalf("cycle %d: %d evaluations after %q, want %d", i, len(buf)-1, buf[0].Value, len(want))
		}
	}
	if got := (*Engine)(nil).AppendEvaluations(context.Background(), buf[:1], now); len(got) != 1 {
		t.Errorf("a nil engine appended %d", len(got)-1)
	}
}

// Engines are safe for concurrent use: cycles at the same time each get
// buffers of their own (run with -race).
func TestConcurrentEvaluate(t *testing.T) {
	st, _ := benchStore(200)
	dep := rule("gateway_success", config.DependencySuccess)
	dep.DependencySuccess = &config.DependencySuccessRule{Dependency: "bank-gateway", Below: 0.999, Window: 5 * time.Minute}
	e := NewEngine(&config.Alerting{Rules: []*config.Rule{flowFailingRule(1, nil, ""), dep}}, NewStoreSource(st, nil, nil), Options{Key: testKey})
	want := e.Evaluate(context.Background(), now)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 5 {
				if got := e.Evaluate(context.Background(), now); !reflect.DeepEqual(got, want) {
					t.Error("concurrent cycles disagree")
					return
				}
			}
		})
	}
	wg.Wait()
}
