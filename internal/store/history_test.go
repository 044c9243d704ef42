package store

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/result"
)

// t0 is aligned to every bucket width (10s, 1m, 10m, 1h).
var t0 = time.Date(2026, 11, 3, 2, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

// mkRun is a checkout run: login, then pay (dependency bank-gateway), which
// fails with a swallowed error when ok is false. It ends 1s after start.
func mkRun(region string, start time.Time, ok bool, trace string) *result.Run {
	r := &result.Run{Flow: "checkout", Region: region, TraceID: trace, Start: start, Duration: time.Second,
		Status: result.Passed, Class: result.OK}
	r.Steps = []result.Step{
		{Name: "login", Status: result.Passed, Class: result.OK, Start: start, Duration: 300 * time.Millisecond},
		{Name: "pay", Dependency: "bank-gateway", Status: result.Passed, Class: result.OK,
			Start: start.Add(300 * time.Millisecond), Duration: 700 * time.Millisecond},
	}
	if !ok {
		r.Status, r.Class, r.FailedStep = result.Failed, result.SwallowedError, "pay"
		r.Steps[1].Status, r.Steps[1].Class = result.Failed, result.SwallowedError
		r.Steps[1].Failures = []result.Failure{{Expectation: `json.status == "success"`, Actual: `"processing"`,
			Message: `json.status == "success": got "processing"`}}
	}
	return r
}

func TestCounterRounding(t *testing.T) {
	// Events at these seconds after t0; the 10s tier's buckets are
	// [0,10) [10,20) [20,30) ...
	events := []int64{0, 5, 9, 10, 19, 25}
	var k counter[uint8, uint16]
	for _, e := range events {
		k.add(t0.Unix()+e, e != 9)
	}
	tests := []struct {
		at, w       time.Duration
		good, total int
		why         string
	}{
		// (9s,19s]: bucket [0,10) is 10% inside: out. Buckets [10,20): 10, 19.
		{19 * time.Second, 10 * time.Second, 2, 2, "exact at a bucket edge"},
		// (4s,19s]: [0,10) is 60% inside: in. 0, 5, 9(bad), 10, 19.
		{19 * time.Second, 15 * time.Second, 4, 5, "more than half in: counted"},
		// (5s,19s]: [0,10) exactly half inside: out.
		{19 * time.Second, 14 * time.Second, 2, 2, "half in: not counted"},
		// (18s,19s]: never less than the bucket holding at.
		{19 * time.Second, time.Second, 2, 2, "at least one bucket"},
		// (20s,30s]: [20,30) holds 25; [30,40) holds nothing.
		{30 * time.Second, 10 * time.Second, 1, 1, "newest bucket empty"},
		// (-5s,25s]: everything.
		{25 * time.Second, 30 * time.Second, 5, 6, "all"},
		// A window in the past, (2s,12s]: the bucket holding 12s is less
		// than half inside and newer events exist: out. [0,10) is 80%
		// inside: in. So 0, 5, 9(bad), where the exact answer is 5, 9, 10.
		{12 * time.Second, 10 * time.Second, 2, 3, "past window: nearest edges"},
		// Before any event.
		{-time.Minute, 10 * time.Second, 0, 0, "before the first event"},
		{time.Hour, 10 * time.Second, 0, 0, "long after: nothing new"},
		{25 * time.Second, 0, 0, 0, "empty window"},
	}
	for _, tt := range tests {
		g, n := k.sum(at(tt.at), tt.w)
		if g != tt.good || n != tt.total {
			t.Errorf("%s: (at %s, w %s) = %d/%d, want %d/%d", tt.why, tt.at, tt.w, g, n, tt.good, tt.total)
		}
	}
	var empty counter[uint32, uint32]
	if g, n := empty.sum(t0, time.Hour); g != 0 || n != 0 {
		t.Error("empty counter counted")
	}
}

// TestCounterTiers feeds 75 hours of one event a minute (at :30 of each
// minute; every 10th bad) and checks windows served by every tier against
// an exact count: the windows and at are aligned, so rounding loses
// nothing.
func TestCounterTiers(t *testing.T) {
	var k counter[uint8, uint16]
	const minutes = 75 * 60
	type ev struct {
		sec  int64
		good bool
	}
	var evs []ev
	for i := int64(0); i < minutes; i++ {
		e := ev{t0.Unix() + i*60 + 30, i%10 != 0}
		evs = append(evs, e)
		k.add(e.sec, e.good)
	}
	exact := func(atT time.Time, w time.Duration) (g, n int) {
		for _, e := range evs {
			if e.sec > atT.Add(-w).Unix() && e.sec <= atT.Unix() {
				n++
				if e.good {
					g++
				}
			}
		}
		return
	}
	now := at(minutes * time.Minute) // 75h
	for _, w := range []time.Duration{5 * time.Minute, 10 * time.Minute, 30 * time.Minute,
		time.Hour, 2 * time.Hour, 6 * time.Hour, 24 * time.Hour, 72 * time.Hour} {
		g, n := k.sum(now, w)
		eg, en := exact(now, w)
		if g != eg || n != en {
			t.Errorf("window %s: %d/%d, want %d/%d", w, g, n, eg, en)
		}
	}
	// Hand-checked: 5m holds minutes 4495..4499, of which 4496..4499 are
	// good (4490 and 4500 are the bad ones around).
	if g, n := k.sum(now, 5*time.Minute); g != 5 || n != 5 {
		t.Errorf("5m: %d/%d, want 5/5", g, n)
	}
	// 3 days: 4320 events, 432 bad.
	if g, n := k.sum(now, 72*time.Hour); g != 3888 || n != 4320 {
		t.Errorf("3d: %d/%d, want 3888/4320", g, n)
	}
	// Windows into the past: the hour ending at 74h starts before what the
	// 1m ring holds (61 minutes back from 74h59m30s), so it is served at
	// 10m; 2h ending at 70h at 1h. Neither counts the newer events in the
	// bucket holding its end.
	for _, c := range []struct{ end, w time.Duration }{{74 * time.Hour, time.Hour}, {70 * time.Hour, 2 * time.Hour}} {
		g, n := k.sum(at(c.end), c.w)
		eg, en := exact(at(c.end), c.w)
		if g != eg || n != en {
			t.Errorf("window %s ending at %s: %d/%d, want %d/%d", c.w, c.end, g, n, eg, en)
		}
	}
	// Eviction: the coarsest ring holds 73 hours (buckets 2h..74h); the
	// first two hours are gone, whatever the window.
	if _, n := k.sum(now, 100*time.Hour); n != minutes-120 {
		t.Errorf("100h window: %d events, want %d (the first 2h evicted)", n, minutes-120)
	}
	if len(k.fine)+len(k.coarse) != slots || len(k.bad.fine)+len(k.bad.coarse) != slots {
		t.Errorf("ring grew: %d+%d", len(k.fine), len(k.coarse))
	}
	// Jumping far ahead clears everything; a late event older than the
	// rings is dropped, a late one within them counted.
	k.add(t0.Unix()+200*3600, true)
	if _, n := k.sum(at(200*time.Hour), 100*time.Hour); n != 1 {
		t.Errorf("after a 5-day gap: %d events, want 1", n)
	}
	k.add(t0.Unix(), true)               // 200h late: dropped
	k.add(t0.Unix()+200*3600-125, false) // 125s late: in every tier
	if g, n := k.sum(at(200*time.Hour), 5*time.Minute); g != 1 || n != 2 {
		t.Errorf("late events: %d/%d, want 1/2", g, n)
	}
}

func TestCounterSaturates(t *testing.T) {
	var k counter[uint8, uint16]
	var d counter[uint32, uint32]
	for i := 0; i < 70000; i++ {
		k.add(t0.Unix(), i%2 == 0)
		d.add(t0.Unix(), i%2 == 0)
	}
	tests := []struct {
		name string
		k    interface {
			sum(time.Time, time.Duration) (int, int)
		}
		w           time.Duration
		good, total int
	}{
		{"flow, 10s tier (uint8)", &k, 10 * time.Second, 128, 255},
		{"flow, 1m tier (uint8)", &k, 30 * time.Minute, 128, 255},
		{"flow, 10m tier (uint16)", &k, 3 * time.Hour, 32768, 65535},
		{"flow, 1h tier (uint16)", &k, 24 * time.Hour, 32768, 65535},
		{"dependency, 10s tier (uint32)", &d, 10 * time.Second, 35000, 70000},
		{"dependency, 1h tier (uint32)", &d, 24 * time.Hour, 35000, 70000},
	}
	for _, tt := range tests {
		if g, n := tt.k.sum(at(time.Second), tt.w); g != tt.good || n != tt.total {
			t.Errorf("%s: %d/%d, want %d/%d", tt.name, g, n, tt.good, tt.total)
		}
	}
}

func TestFlowAndDependencyCounts(t *testing.T) {
	s := New(10)
	// Minute 0: pass. Minute 1: a blip (failed, retried, retry passes).
	// Minute 2: a confirmed failure (failed, retried, retry fails).
	s.Observe(mkRun("a", at(0), true, "t0"))
	blip := mkRun("a", at(time.Minute), false, "t1")
	blip.Retried = true
	s.Observe(blip)
	retry := mkRun("a", at(time.Minute+2*time.Second), true, "t1r")
	retry.Retry, retry.RetryOf = 1, "t1"
	s.Observe(retry)
	f := mkRun("a", at(2*time.Minute), false, "t2")
	f.Retried = true
	s.Observe(f)
	f2 := mkRun("a", at(2*time.Minute+2*time.Second), false, "t2r")
	f2.Retry, f2.RetryOf = 1, "t2"
	s.Observe(f2)

	now := at(3 * time.Minute)
	// Final runs only: t0 (ok), t1r (ok), t2r (failed).
	if g, n := s.FlowCounts("checkout", 5*time.Minute, now); g != 2 || n != 3 {
		t.Errorf("flow counts %d/%d, want 2/3 (retried runs are not final)", g, n)
	}
	// The pay calls of final runs: t0 ok, t1r ok, t2r failed.
	if g, n := s.DependencyCounts("bank-gateway", 5*time.Minute, now); g != 2 || n != 3 {
		t.Errorf("dependency counts %d/%d, want 2/3", g, n)
	}
	if g, n := s.FlowCounts("nope", time.Hour, now); g != 0 || n != 0 {
		t.Error("unknown flow counted")
	}
	if g, n := s.DependencyCounts("nope", time.Hour, now); g != 0 || n != 0 {
		t.Error("unknown dependency counted")
	}
	if d := s.Dependencies(); !slices.Equal(d, []string{"bank-gateway"}) {
		t.Errorf("dependencies %v", d)
	}
	if d := s.DependencyFlows("bank-gateway"); !slices.Equal(d, []string{"checkout"}) {
		t.Errorf("dependency flows %v", d)
	}
	// Every executed step is a duration sample, retried runs included: 5
	// login samples. The flow's run durations are final runs only: 3.
	if _, n := s.Slower("checkout", "login", 0, 5*time.Minute, now); n != 5 {
		t.Errorf("login samples %d, want 5", n)
	}
	if _, n := s.Slower("checkout", "", 0, 5*time.Minute, now); n != 3 {
		t.Errorf("run samples %d, want 3", n)
	}
	// A run without a start time (hand-made) is stored but not history.
	s.Observe(&result.Run{Flow: "bare", ID: "x"})
	if s.Latest("bare") == nil || s.Regions("bare") != nil {
		t.Error("bare run")
	}
}

// TestSlower counts the durations above a threshold: strictly above, as
// a le bucket at the threshold counts the rest.
func TestSlower(t *testing.T) {
	s := New(1)
	for i := 1; i <= 10; i++ { // 100ms..1000ms, one run a minute
		s.Observe(&result.Run{Flow: "f", Region: "a", Start: at(time.Duration(i) * time.Minute),
			Duration: time.Duration(i) * 100 * time.Millisecond, Status: result.Passed,
			Steps: []result.Step{{Name: "pay", Status: result.Passed, Duration: time.Duration(i) * 200 * time.Millisecond}}})
	}
	now := at(10*time.Minute + 30*time.Second)
	tests := []struct {
		step             string
		threshold, w     time.Duration
		wantSlower, want int
	}{
		{"", 800 * time.Millisecond, time.Hour, 2, 10}, // 900, 1000; 800 itself is not slower
		{"", 2 * time.Second, time.Hour, 0, 10},
		{"", 0, 3 * time.Minute, 3, 3},
		{"pay", time.Second, time.Hour, 5, 10}, // 1200..2000
		{"pay", time.Second, time.Second, 0, 0},
		{"nostep", time.Second, time.Hour, 0, 0},
	}
	for _, tt := range tests {
		slower, n := s.Slower("f", tt.step, tt.threshold, tt.w, now)
		if slower != tt.wantSlower || n != tt.want {
			t.Errorf("step %q above %s over %s: %d of %d, want %d of %d", tt.step, tt.threshold, tt.w, slower, n, tt.wantSlower, tt.want)
		}
	}
}

func TestSampledFlows(t *testing.T) {
	s := New(1)
	obs := func(flow string, min int) {
		s.Observe(&result.Run{Flow: flow, Region: "a", Start: at(time.Duration(min) * time.Minute),
			Duration: time.Second, Status: result.Passed, Steps: []result.Step{{Name: "pay", Status: result.Passed, Duration: time.Second}}})
	}
	samples := func(flow string, min int) int {
		_, n := s.Slower(flow, "pay", 0, time.Hour, at(time.Duration(min)*time.Minute+30*time.Second))
		return n
	}
	obs("a", 1)
	obs("b", 1)
	if samples("a", 1) != 1 || samples("b", 1) != 1 {
		t.Fatal("by default every flow keeps samples")
	}
	// Only a is sampled from now on: b's samples are dropped at once (its
	// counts stay), a's kept.
	s.SetSampledFlows([]string{"a"})
	if samples("a", 1) != 1 || samples("b", 1) != 0 {
		t.Errorf("after limiting to a: a %d, b %d samples, want 1, 0", samples("a", 1), samples("b", 1))
	}
	obs("a", 2)
	obs("b", 2)
	if samples("a", 2) != 2 || samples("b", 2) != 0 {
		t.Errorf("a %d, b %d samples, want 2, 0", samples("a", 2), samples("b", 2))
	}
	if _, n := s.FlowCounts("b", time.Hour, at(3*time.Minute)); n != 2 {
		t.Errorf("b's run counts %d, want 2: only samples are limited", n)
	}
	// b listed again: its samples start with its next run; none listed
	// (an empty set) keeps none; nil keeps all again.
	s.SetSampledFlows([]string{"a", "b"})
	obs("b", 3)
	if samples("b", 3) != 1 {
		t.Errorf("b relisted: %d samples, want 1", samples("b", 3))
	}
	s.SetSampledFlows([]string{})
	obs("a", 4)
	if samples("a", 4) != 0 {
		t.Error("an empty set still samples")
	}
	s.SetSampledFlows(nil)
	obs("a", 5)
	if samples("a", 5) != 1 {
		t.Error("nil does not sample every flow again")
	}
}

func TestDurationTable(t *testing.T) {
	var d durTable
	base := uint32(t0.Unix())
	// One a second for 2 hours, keeping 1 hour and at most 1000.
	for i := uint32(0); i < 7200; i++ {
		d.row(base+i, 1, 3600, 1000)[0] = i
	}
	if d.n != 1000 || len(d.at) != 1000 || d.at[(d.start+d.n-1)%len(d.at)] != base+7199 {
		t.Errorf("kept %d in %d, want the newest 1000 in 1000", d.n, len(d.at))
	}
	// One a minute: the hour bound wins, and capacity stays small.
	var m durTable
	for i := uint32(0); i < 24*60; i++ {
		m.row(base+60*i, 1, 3600, 1000)[0] = i
	}
	if m.n != 61 || len(m.at) > 128 {
		t.Errorf("kept %d in %d, want 61 in <= 128", m.n, len(m.at))
	}
	// A new step widens the table; older rows have no sample for it.
	var w durTable
	for i := uint32(0); i < 3; i++ {
		r := w.row(base+i, 2, 3600, 1000)
		r[0], r[1] = 100, 10
	}
	r := w.row(base+3, 3, 3600, 1000)
	r[0], r[2] = 200, 7
	at := time.Unix(int64(base+3), 0)
	for _, c := range []struct {
		col, n, over9 int // samples, and those above 9µs
	}{{0, 4, 4}, {1, 3, 3}, {2, 1, 0}, {3, 0, 0}} {
		if over9, n := w.slower(c.col, 9*time.Microsecond, at, time.Hour); n != c.n || over9 != c.over9 {
			t.Errorf("column %d: %d of %d above 9µs, want %d of %d", c.col, over9, n, c.over9, c.n)
		}
	}
	// The bound lowered: the table shrinks to it as rows arrive.
	s := New(1)
	s.SetSampleRetention(10*time.Minute, 5)
	for i := 0; i < 20; i++ {
		s.Observe(&result.Run{Flow: "f", Start: at.Add(time.Duration(i) * time.Minute), Duration: time.Second})
	}
	if _, n := s.Slower("f", "", 0, time.Hour, at.Add(time.Hour)); n != 5 {
		t.Errorf("retention 5: %d samples", n)
	}
	if micros(-time.Second) != 0 || micros(100*time.Hour) != noDur-1 {
		t.Error("micros does not saturate")
	}
}

func TestStreaks(t *testing.T) {
	type obs struct {
		region  string
		min     int // start minute
		ok      bool
		retried bool // a retry follows
		retry   int
	}
	fail := func(region string, min int) []obs {
		return []obs{{region, min, false, true, 0}, {region, min, false, false, 1}}
	}
	cat := func(o ...[]obs) []obs { return slices.Concat(o...) }
	tests := []struct {
		name   string
		runs   []obs
		want   string // per region: region ok since retries traces
		stream []string
	}{
		{"passing", []obs{{"a", 0, true, false, 0}, {"a", 1, true, false, 0}},
			"a ok since 0m retries 0 []", nil},
		// The failure's slot began with its first attempt (minute 2,
		// trace a2), not with the retry that confirmed it (a2r1).
		{"confirmed failure", cat([]obs{{"a", 0, true, false, 0}}, fail("a", 2)),
			"a failing since 2m retries 1 [a2r1 a2r0]", nil},
		{"blip cleared", []obs{{"a", 0, true, false, 0}, {"a", 1, false, true, 0}, {"a", 1, true, false, 1}},
			"a ok since 0m retries 0 []", nil},
		{"recovered", cat(fail("a", 0), []obs{{"a", 1, true, false, 0}}),
			"a ok since 1m retries 0 []", nil},
		// Five failing slots, ten traces: the newest five.
		{"long streak", cat(fail("a", 0), fail("a", 1), fail("a", 2), fail("a", 3), fail("a", 4)),
			"a failing since 0m retries 1 [a4r1 a4r0 a3r1 a3r0 a2r1]", nil},
		// Two retries that agreed.
		{"two retries", []obs{{"a", 0, false, true, 0}, {"a", 0, false, true, 1}, {"a", 0, false, false, 2}},
			"a failing since 0m retries 2 [a0r2 a0r1 a0r0]", nil},
		{"no retries configured", []obs{{"a", 0, true, false, 0}, {"a", 1, false, false, 0}},
			"a failing since 1m retries 0 [a1r0]", nil},
		{"regions", cat([]obs{{"b", 0, true, false, 0}}, fail("a", 1), []obs{{"c", 0, true, false, 0}}),
			"a failing since 1m retries 1 [a1r1 a1r0]; b ok since 0m retries 0 []; c ok since 0m retries 0 []", nil},
		// Only retried attempts so far: no final run, no state.
		{"chain in flight", []obs{{"a", 0, false, true, 0}}, "", nil},
	}
	for _, tt := range tests {
		s := New(5)
		for _, o := range tt.runs {
			start := at(time.Duration(o.min)*time.Minute + time.Duration(o.retry)*5*time.Second)
			r := mkRun(o.region, start, o.ok, fmt.Sprintf("%s%dr%d", o.region, o.min, o.retry))
			r.Retried, r.Retry = o.retried, o.retry
			s.Observe(r)
		}
		var parts []string
		for _, rs := range s.Regions("checkout") {
			state := "ok"
			if !rs.OK {
				state = "failing"
				if rs.Step != "pay" || rs.Dependency != "bank-gateway" || rs.Class != "swallowed_error" ||
					rs.Expectation != `json.status == "success"` || rs.Actual != `"processing"` ||
					rs.Message != `json.status == "success": got "processing"` {
					t.Errorf("%s: failure details %+v", tt.name, rs)
				}
			} else if rs.Step != "" || rs.Message != "" {
				t.Errorf("%s: passing region with failure details %+v", tt.name, rs)
			}
			if want := rs.Last.Sub(t0); want <= 0 {
				t.Errorf("%s: last %s", tt.name, rs.Last)
			}
			parts = append(parts, fmt.Sprintf("%s %s since %vm retries %d %v", rs.Region, state, rs.Since.Sub(t0).Minutes(), rs.Retries, rs.TraceIDs))
		}
		if got := strings.Join(parts, "; "); got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, got, tt.want)
		}
	}
}

func TestRetainHistory(t *testing.T) {
	s := New(3)
	for i := 0; i < 5; i++ {
		for _, f := range []string{"a", "b"} {
			r := mkRun("x", at(time.Duration(i)*time.Minute), i != 4, fmt.Sprint(f, i))
			r.Flow = f
			s.Observe(r)
		}
	}
	now := at(5 * time.Minute)
	s.Retain([]string{"a"}, 2) // b goes; a's history survives the new bound
	if _, n := s.FlowCounts("b", time.Hour, now); n != 0 || s.Regions("b") != nil {
		t.Error("b's history kept")
	}
	if g, n := s.FlowCounts("a", time.Hour, now); g != 4 || n != 5 {
		t.Errorf("a's counts after Retain: %d/%d", g, n)
	}
	if rs := s.Regions("a"); len(rs) != 1 || rs[0].OK {
		t.Errorf("a's regions after Retain: %+v", rs)
	}
	if got := s.DependencyFlows("bank-gateway"); !slices.Equal(got, []string{"a"}) {
		t.Errorf("dependency flows after Retain: %v", got)
	}
	// A still-called dependency keeps the removed flow's past calls.
	if _, n := s.DependencyCounts("bank-gateway", time.Hour, now); n != 10 {
		t.Errorf("dependency calls %d, want 10", n)
	}
	s.Retain(nil, 2)
	if s.Dependencies() != nil && len(s.Dependencies()) != 0 {
		t.Errorf("dependencies of no flow kept: %v", s.Dependencies())
	}
}

// TestMemoryPerFlow simulates a day of one run a minute for many flows of
// five steps (one calling a dependency, failing now and then) and reports
// the history's bytes per flow. The ring keeps one pointer per flow to a
// shared run, so what is measured is the history.
func TestMemoryPerFlow(t *testing.T) {
	flows := 300
	if testing.Short() {
		flows = 50
	}
	runs := make([]*result.Run, flows)
	for i := range runs {
		r := mkRun("eu-west-1", t0, true, "")
		r.Flow = fmt.Sprintf("flow-%05d", i)
		for _, n := range []string{"cart", "confirm", "logout"} {
			r.Steps = append(r.Steps, result.Step{Name: n, Status: result.Passed, Duration: 100 * time.Millisecond})
		}
		runs[i] = r
	}
	var before, after runtime.MemStats
	// Twice: what sync.Pools hold (bbolt's page buffers, from the archive
	// tests before) is freed only by the second collection.
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := New(1)
	for m := 0; m < 24*60; m++ {
		start := at(time.Duration(m) * time.Minute)
		for i, r := range runs {
			r.Start = start
			for j := range r.Steps {
				r.Steps[j].Start = start
			}
			ok := (m+i)%97 != 0
			r.Status, r.Steps[1].Status = result.Passed, result.Passed
			if !ok {
				r.Status, r.Steps[1].Status = result.Failed, result.Failed
			}
			r.TraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
			s.Observe(r)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / float64(flows)
	t.Logf("history after a day of 1/min runs: %.0f bytes per flow (5 steps, 1 region, 1 dependency); 10,000 flows: %.1f MB",
		per, per*10000/1e6)
	if per > 8000 {
		t.Errorf("%.0f bytes per flow, want < 8000", per)
	}
	runtime.KeepAlive(s)

	// For comparison, what each full run kept in the ring costs (keep
	// runs per flow): five steps with their own ids and URLs.
	runtime.GC()
	runtime.ReadMemStats(&before)
	kept := make([]*result.Run, 1000)
	for i := range kept {
		r := mkRun("eu-west-1", t0, i%2 == 0, fmt.Sprintf("%032x", i))
		r.ID = fmt.Sprintf("%032x", i+1)
		for _, n := range []string{"cart", "confirm", "logout"} {
			r.Steps = append(r.Steps, result.Step{Name: n, Status: result.Passed})
		}
		for j := range r.Steps {
			r.Steps[j].SpanID = fmt.Sprintf("%016x", i*10+j)
			r.Steps[j].URL = fmt.Sprintf("https://shop.example.com/api/orders/%d/%s", i, r.Steps[j].Name)
			r.Steps[j].Method = "POST"
		}
		kept[i] = r
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	t.Logf("a kept run of 5 steps: %.0f bytes (the ring keeps `keep` of them per flow)",
		float64(after.HeapAlloc-before.HeapAlloc)/float64(len(kept)))
	runtime.KeepAlive(kept)
}

func BenchmarkObserve(b *testing.B) {
	s := New(100)
	runs := make([]*result.Run, 100)
	for i := range runs {
		runs[i] = mkRun("a", t0, i%10 != 0, "4bf92f3577b34da6a3ce929d0e0e4736")
		runs[i].Flow = fmt.Sprint("flow-", i%10)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := runs[i%len(runs)]
		r.Start = at(time.Duration(i) * time.Second)
		s.Observe(r)
	}
}

// A counter that has counted only good events keeps no bad cells: 1,000
// flows' counters hold at most 450 bytes each (measured 416, the slice of
// counters included; was 667 with a good and a total cell per bucket).
// The first bad event adds them, and the counts stay exact.
func TestCounterGoodOnlyRetained(t *testing.T) {
	const n = 1000
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	ks := make([]counter[uint8, uint16], n)
	for i := range ks {
		for m := range 3 {
			ks[i].add(t0.Unix()+int64(m*60), true)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if per := float64(after.HeapAlloc-before.HeapAlloc) / n; per > 450 && !raceEnabled {
		t.Errorf("%.0f bytes a good-only counter, want <= 450", per)
	}
	k := &ks[0]
	k.add(t0.Unix()+150, false)
	k.add(t0.Unix()+150, true)
	if g, total := k.sum(at(3*time.Minute), time.Hour); g != 4 || total != 5 {
		t.Errorf("after a bad event: %d/%d, want 4/5", g, total)
	}
	if g, total := k.sum(at(3*time.Minute), 30*time.Second); g != 1 || total != 2 {
		t.Errorf("the bad event's 10s bucket: %d/%d, want 1/2", g, total)
	}
	runtime.KeepAlive(ks)
}

// A flow's counts keep their coarse cells a byte each while they fit and
// widen before one would saturate: a flow run every second counts exactly
// what two-byte cells count (the 10m and 1h buckets hold 600 and 3,600),
// one run once a minute for three days stays narrow; a snapshot restores
// either as it was.
func TestFlowCountsWiden(t *testing.T) {
	for _, tc := range []struct {
		name  string
		every int64 // seconds
		span  int64
		wide  bool
	}{
		{"every second", 1, 3 * 3600, true},
		{"every 15s", 15, 4 * 3600, false}, // 240 an hour
		{"every 14s", 14, 4 * 3600, true},  // 257 an hour
		{"every minute", 60, 72 * 3600, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c flowCounts
			var ref counter[uint8, uint16]
			for s := int64(0); s < tc.span; s += tc.every {
				good := s%(7*tc.every) != 0
				c.add(t0.Unix()+s, good)
				ref.add(t0.Unix()+s, good)
			}
			if (c.wide != nil) != tc.wide {
				t.Errorf("widened: %v, want %v", c.wide != nil, tc.wide)
			}
			end := t0.Add(time.Duration(tc.span) * time.Second)
			check := func(what string, c *flowCounts) {
				t.Helper()
				for _, w := range []time.Duration{time.Minute, 5 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 6 * time.Hour, 24 * time.Hour, 72 * time.Hour} {
					g, n := c.sum(end, w)
					wg, wn := ref.sum(end, w)
					if g != wg || n != wn {
						t.Errorf("%s: %s window: %d/%d, two-byte cells count %d/%d", what, w, g, n, wg, wn)
					}
				}
			}
			check("counted", &c)
			var back flowCounts
			back.set(ref)
			if (back.wide != nil) != tc.wide {
				t.Errorf("restored widened: %v, want %v", back.wide != nil, tc.wide)
			}
			check("restored", &back)
			if a, b := c.appendTo(nil), ref.appendTo(nil); !slices.Equal(a, b) {
				t.Errorf("encoded differently from two-byte cells")
			}
		})
	}
}

// A dependency's callers are a bit in each calling flow's history for the
// first 64 dependencies and a set past them; either way DependencyFlows
// lists them sorted, a snapshot keeps them, and a reload that removes a
// dependency's last caller drops it and frees its bit for the next one.
func TestDependencyCallers(t *testing.T) {
	st := New(1)
	var names []string
	want := map[string][]string{}
	for i := range 100 {
		flow := fmt.Sprintf("flow-%03d", i)
		names = append(names, flow)
		r := mkRun("a", t0, true, "")
		r.Flow = flow
		for _, k := range []int{i % 70, (i * 7) % 70} { // 70 dependencies
			dep := fmt.Sprintf("dep-%02d", k)
			r.Steps = append(r.Steps, result.Step{Name: dep, Dependency: dep, Status: result.Passed, Class: result.OK})
			if !slices.Contains(want[dep], flow) {
				want[dep] = append(want[dep], flow)
			}
		}
		st.Observe(r)
	}
	check := func(st *Store, when string) {
		t.Helper()
		if got := st.Dependencies(); len(got) != len(want)+1 { // and bank-gateway
			t.Errorf("%s: %d dependencies, want %d", when, len(got), len(want)+1)
		}
		for dep, flows := range want {
			if got := st.DependencyFlows(dep); !slices.Equal(got, flows) {
				t.Errorf("%s: %s called by %v, want %v", when, dep, got, flows)
			}
		}
	}
	check(st, "observed")
	back := New(1)
	if err := back.RestoreHistory(st.AppendHistory(nil, at(time.Minute)), at(time.Minute), time.Hour); err != nil {
		t.Fatal(err)
	}
	check(back, "restored")
	// flow-000 alone calls dep-00 (i%70 == 0 or 7i%70 == 0: i = 0, 10, 20,
	// ...): removing the flows with i%10 == 0 leaves dep-00 uncalled.
	var kept []string
	for i, f := range names {
		if i%10 != 0 {
			kept = append(kept, f)
		}
	}
	st.Retain(kept, 1)
	for dep, flows := range want {
		want[dep] = slices.DeleteFunc(flows, func(f string) bool { return !slices.Contains(kept, f) })
		if len(want[dep]) == 0 {
			delete(want, dep)
			if got := st.DependencyFlows(dep); got != nil {
				t.Errorf("%s, no longer called, still lists %v", dep, got)
			}
		}
	}
	check(st, "after a reload")
	r := mkRun("a", t0, true, "")
	r.Flow = "flow-001"
	r.Steps[1].Dependency = "new-dep"
	st.Observe(r)
	want["new-dep"] = []string{"flow-001"}
	check(st, "a new dependency")
}
