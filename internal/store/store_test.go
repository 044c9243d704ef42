package store

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/result"
)

func run(flow string, i int) *result.Run { return &result.Run{Flow: flow, ID: fmt.Sprint(i)} }

func ids(rs []*result.Run) string {
	s := ""
	for _, r := range rs {
		s += r.ID
	}
	return s
}

func TestRing(t *testing.T) {
	tests := []struct {
		keep, add, n int
		want         string
	}{
		{3, 0, 0, ""},
		{3, 2, 0, "10"},
		{3, 3, 0, "210"},
		{3, 5, 0, "432"},
		{3, 7, 2, "65"},
		{3, 7, 10, "654"},
		{1, 4, 0, "3"},
		{5, 9, 1, "8"},
	}
	for _, tt := range tests {
		s := New(tt.keep)
		for i := 0; i < tt.add; i++ {
			s.Observe(run("f", i))
		}
		if got := ids(s.Recent("f", tt.n)); got != tt.want {
			t.Errorf("keep %d add %d n %d: %q, want %q", tt.keep, tt.add, tt.n, got, tt.want)
		}
	}
}

func TestLatestFlowsRetain(t *testing.T) {
	s := New(4)
	if s.Latest("a") != nil || s.Recent("a", 1) != nil {
		t.Fatal("empty store returned runs")
	}
	for i := 0; i < 6; i++ {
		s.Observe(run("a", i))
		s.Observe(run("b", i))
	}
	if s.Latest("a").ID != "5" {
		t.Fatal(s.Latest("a").ID)
	}
	if fmt.Sprint(s.Flows()) != "[a b]" {
		t.Fatal(s.Flows())
	}
	s.Retain([]string{"a"}, 2) // shrink: keep the newest two
	if fmt.Sprint(s.Flows()) != "[a]" || ids(s.Recent("a", 0)) != "54" {
		t.Fatalf("after shrink: %v %q", s.Flows(), ids(s.Recent("a", 0)))
	}
	s.Observe(run("a", 6))
	if got := ids(s.Recent("a", 0)); got != "65" {
		t.Fatalf("after shrink and add: %q", got)
	}
	s.Retain([]string{"a"}, 3) // grow: keeps order, fills up
	s.Observe(run("a", 7))
	s.Observe(run("a", 8))
	if got := ids(s.Recent("a", 0)); got != "876" {
		t.Fatalf("after grow: %q", got)
	}
}

func TestConcurrent(t *testing.T) {
	s := New(10)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				s.Observe(run(fmt.Sprint("f", g%2), i))
				_ = s.Recent("f0", 5)
				_ = s.Flows()
			}
		}()
	}
	wg.Wait()
	if len(s.Recent("f0", 0)) != 10 {
		t.Fatal("bound not kept")
	}
}

// With many flows, each keeps its newest runs in full and older ones as
// summaries: rebuilt, they say what the strip, the API and a run's page
// show (start, duration, status, class, failed step and failure, trace id,
// run id, retries), without the steps that passed.
func TestSummaries(t *testing.T) {
	names := make([]string, 5000)
	for i := range names {
		names[i] = fmt.Sprintf("flow-%04d", i)
	}
	names[0] = "a"
	s := New(100)
	s.Retain(names, 100)
	keep, full := s.bounds()
	if keep != 60 || full != 2 {
		t.Fatalf("bounds with 5000 flows: keep %d, full %d; want 60, 2", keep, full)
	}
	t0 := time.Date(2026, 11, 3, 2, 14, 0, 0, time.UTC)
	var all []*result.Run
	for i := 0; i < 70; i++ {
		r := &result.Run{Flow: "a", Region: "eu-west-1", Labels: map[string]string{"team": "payments"},
			ID: fmt.Sprintf("%016x", 0xabc000+i), TraceID: fmt.Sprintf("%032x", 0xdef000+i),
			Planned: t0.Add(time.Duration(i) * time.Minute), Start: t0.Add(time.Duration(i)*time.Minute + 1500*time.Microsecond),
			Duration: time.Duration(i+1) * time.Millisecond, Status: result.Passed, Class: result.OK,
			Steps: []result.Step{{Name: "login", Status: result.Passed, Class: result.OK, URL: "http://x/login"}}}
		switch i % 7 {
		case 3: // failed at pay, retried
			r.Status, r.Class, r.FailedStep, r.Retried = result.Failed, result.SwallowedError, "pay", true
			r.Steps = append(r.Steps, result.Step{Name: "pay", Status: result.Failed, Class: result.SwallowedError,
				Failures: []result.Failure{{Expectation: `json.status == "success"`, Actual: `"processing"`, Message: `json.status == "success": got "processing"`}}})
		case 4: // its retry, failing too
			r.Status, r.Class, r.FailedStep, r.Retry, r.RetryOf = result.Failed, result.HTTP5xx, "pay", 1, all[i-1].TraceID
			r.Planned = time.Time{}
			r.Steps = append(r.Steps, result.Step{Name: "pay", Status: result.Failed, Class: result.HTTP5xx,
				Failures: []result.Failure{{Message: "status 503"}}})
		case 5: // an id that is not hex, an odd class and no failed step
			r.ID, r.Status, r.Class = "run-5", result.Failed, result.Class("weird")
		}
		all = append(all, r)
		s.Observe(r)
	}
	got := s.Recent("a", 0)
	if len(got) != 60 {
		t.Fatalf("%d runs kept, want 60", len(got))
	}
	for i, g := range got {
		w := all[69-i]
		if i < 2 {
			if !sameRun(g, w) {
				t.Errorf("run %d: not the run observed", i)
			}
			continue
		}
		if !g.Summarized {
			t.Errorf("run %d: not marked summarized", i)
		}
		if g.ID != w.ID || g.TraceID != w.TraceID || g.Flow != "a" || g.Region != w.Region || g.Labels["team"] != "payments" ||
			!g.Start.Equal(w.Start) || !g.Planned.Equal(w.Planned) || g.Duration != w.Duration || g.Status != w.Status ||
			g.Class != w.Class || g.FailedStep != w.FailedStep || g.Retry != w.Retry || g.Retried != w.Retried || g.RetryOf != w.RetryOf {
			t.Errorf("run %d rebuilt as\n%+v\nwant\n%+v", i, *g, *w)
		}
		if f, wf := g.Failed(), w.Failed(); (f == nil) != (wf == nil) ||
			f != nil && (f.Name != wf.Name || f.Class != wf.Class || f.Message() != wf.Message()) {
			t.Errorf("run %d: failed step %+v, want %+v", i, f, wf)
		}
		if w.OK() && len(g.Steps) != 0 {
			t.Errorf("run %d: a passing summary has steps %+v", i, g.Steps)
		}
	}
	if n := len(s.Recent("a", 5)); n != 5 {
		t.Errorf("Recent(a, 5): %d runs", n)
	}
	// Fewer flows: more of each in full; what was summarised stays so.
	s.Retain(names[:50], 100)
	got2 := s.Recent("a", 0)
	if len(got2) != 60 || !sameRun(got2[0], all[69]) || !sameRun(got2[1], all[68]) || got2[2].TraceID != all[67].TraceID || !got2[2].Summarized {
		t.Errorf("after growing the bounds: %d runs, first %s", len(got2), got2[0].TraceID)
	}
	s.Observe(all[0])
	if got := s.Recent("a", 3); !sameRun(got[0], all[0]) || !sameRun(got[1], all[69]) {
		t.Errorf("after growing the bounds and one more run: %s %s", got[0].TraceID, got[1].TraceID)
	}
	// More flows again: down to the minimum kept.
	more := append(slices.Clone(names), make([]string, 20000)...)
	for i := 5000; i < len(more); i++ {
		more[i] = fmt.Sprint("g", i)
	}
	s.Retain(more, 100)
	if got := s.Recent("a", 0); len(got) != MinKeep || !sameRun(got[0], all[0]) || !got[1].Summarized || got[1].TraceID != all[69].TraceID {
		t.Errorf("with 25,000 flows: %d runs", len(got))
	}
}

// What only failed runs' summaries need is dropped with them: however many
// runs fail, a flow keeps at most one entry per run kept.
func TestSummaryExtsBounded(t *testing.T) {
	failing := func(i int) *result.Run {
		return &result.Run{Flow: "a", ID: fmt.Sprint("r", i), Status: result.Failed, Class: result.HTTP5xx, FailedStep: "pay",
			Retry: i % 2, Steps: []result.Step{{Name: "pay", Status: result.Failed, Class: result.HTTP5xx,
				Failures: []result.Failure{{Message: fmt.Sprint("status 503 #", i)}}}}}
	}
	flows := func(n int) []string {
		out := []string{"a"}
		for i := 1; i < n; i++ {
			out = append(out, fmt.Sprint("f", i))
		}
		return out
	}
	s := New(5)
	check := func(when string, keep int) {
		t.Helper()
		fd := s.flows["a"]
		if kept := len(fd.full) + len(fd.sm.sums); kept != keep || len(fd.sm.exts) > kept || len(fd.sm.full) != len(fd.full) {
			t.Errorf("%s: %d runs kept (want %d), %d extra entries, %d summaries of %d full runs", when, kept, keep, len(fd.sm.exts), len(fd.sm.full), len(fd.full))
		}
		rs := s.Recent("a", 0)
		last := rs[len(rs)-1]
		if f := last.Failed(); f == nil || !strings.HasPrefix(f.Message(), "status 503 #") || last.Retry > 1 {
			t.Errorf("%s: oldest run kept rebuilt as %+v", when, last)
		}
	}
	i := 0
	for ; i < 100; i++ {
		s.Observe(failing(i))
	}
	check("all in full", 5)
	s.Retain(flows(1000), 100) // keep 100, 10 in full
	for ; i < 600; i++ {
		s.Observe(failing(i))
	}
	check("1,000 flows", 100)
	s.Retain(flows(20000), 100) // keep 30, 1 in full
	check("20,000 flows, retained", 30)
	for ; i < 700; i++ {
		s.Observe(failing(i))
	}
	check("20,000 flows", 30)
	if rs := s.Recent("a", 2); rs[1].ID != "r698" || rs[1].Retry != 0 || rs[0].Retry != 1 || !rs[1].Summarized {
		t.Errorf("newest two: %+v %+v", rs[0], rs[1])
	}
}
