package daemon

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/prober-dev/prober/internal/schedule"
)

// --shard i/n: each prober runs and exports only the flows it owns, and
// together they run every flow exactly once.
func TestShardsSplitFlows(t *testing.T) {
	files := map[string]string{}
	var names []string
	for i := range 12 {
		n := fmt.Sprintf("h%02d", i)
		names = append(names, n)
		files["flows/"+n+".yaml"] = strings.Replace(healthFlow(n), "every: 1s", "every: 1h", 1)
	}
	files["probes.yaml"] = probes(names...)
	owner := map[string]int{}
	for i := range 2 {
		f := newFixture(t, fixtureOpts{files: files, role: RoleProbe, shard: schedule.Shard{Index: i, Count: 2}})
		f.serve()
		var own []string
		for _, fl := range f.d.Config().Flows {
			own = append(own, fl.Name)
			if prev, dup := owner[fl.Name]; dup {
				t.Fatalf("%s runs on shards %d and %d", fl.Name, prev, i)
			}
			owner[fl.Name] = i
		}
		if len(own) == 0 || len(own) == len(names) {
			t.Fatalf("shard %d/2 owns %d of %d flows", i, len(own), len(names))
		}
		m := f.metrics()
		if v, _ := value(m, "prober_flows_configured"); int(v) != len(own) {
			t.Errorf("shard %d: prober_flows_configured %v, owns %d", i, v, len(own))
		}
		for _, s := range m {
			if fl := string(s.Metric["flow"]); fl != "" && !slices.Contains(own, fl) {
				t.Fatalf("shard %d exports %s of flow %s, which it does not own", i, s.Metric["__name__"], fl)
			}
		}
	}
	if len(owner) != len(names) {
		t.Fatalf("%d of %d flows are owned by a shard", len(owner), len(names))
	}
}

func TestShardNeedsProbeRole(t *testing.T) {
	fsys := fstest.MapFS{"probes.yaml": {Data: []byte("flows: [f.yaml]\n")},
		"f.yaml": {Data: []byte("name: f\nsteps:\n  - name: a\n    request: {url: \"http://127.0.0.1:1/\"}\n")}}
	for _, role := range []Role{"", RoleAll, RoleEvaluate} {
		_, err := New(Options{ConfigFS: fsys, ConfigPath: "probes.yaml", Role: role, Shard: schedule.Shard{Index: 0, Count: 2}})
		if err == nil || !strings.Contains(err.Error(), "--role probe") {
			t.Errorf("role %q with --shard 0/2: %v", role, err)
		}
	}
}

// run_on_start flows run at once; the others wait for their phase (here up
// to an hour away).
func TestRunOnStartInDaemon(t *testing.T) {
	f := newFixture(t, fixtureOpts{files: map[string]string{
		"probes.yaml":      probes("now", "later"),
		"flows/now.yaml":   strings.Replace(healthFlow("now"), "every: 1s", "every: 1h\nrun_on_start: true", 1),
		"flows/later.yaml": strings.Replace(healthFlow("later"), "every: 1s", "every: 1h", 1),
	}})
	f.serve()
	waitFor(t, 10*time.Second, "the run_on_start flow's run", func() bool { return len(f.rec.of("now")) > 0 })
	if n := len(f.rec.of("later")); n != 0 {
		// Its phase could fall in these seconds: 1 in ~1000.
		t.Fatalf("the flow without run_on_start ran %d times at start", n)
	}
}

// A prober whose runs take longer than their interval says so: /readyz
// answers 200 "ready, behind: ..." (it still runs what it can), the
// prober_schedule_behind gauge is 1, and the log has a summary, not a line
// per skip.
func TestReadyzSaysBehind(t *testing.T) {
	f := newFixture(t, fixtureOpts{files: map[string]string{
		"probes.yaml":     probes("slow"),
		"flows/slow.yaml": slowFlow,
	}})
	f.slow.delay.Store(int64(3500 * time.Millisecond))
	f.serve()
	if code, _, body := f.get("/readyz", ""); code != 200 || strings.Contains(body, "behind") {
		t.Fatalf("/readyz before any skip: %d %q", code, body)
	}
	if _, _, page := f.get("/", ""); strings.Contains(page, "Behind schedule") {
		t.Fatalf("the status page says behind before any skip")
	}
	var body string
	waitFor(t, 15*time.Second, "/readyz saying behind", func() bool {
		var code int
		code, _, body = f.get("/readyz", "")
		return code == 200 && strings.Contains(body, "behind")
	})
	if !strings.HasPrefix(body, "ready, behind: ") || !strings.Contains(body, "slow ") {
		t.Fatalf("/readyz: %q", body)
	}
	if v, ok := value(f.metrics(), "prober_schedule_behind"); !ok || v != 1 {
		t.Fatalf("prober_schedule_behind %v (present %v), want 1", v, ok)
	}
	// Every page says so too, with the flows that skip.
	for _, path := range []string{"/", "/flows/slow"} {
		if _, _, page := f.get(path, ""); !strings.Contains(page, `class="banner behind"`) || !strings.Contains(page, "Behind schedule: ") || !strings.Contains(page, "slow ") {
			t.Errorf("%s lacks the behind banner: %.600s", path, page)
		}
	}
	var skips float64
	waitFor(t, 10*time.Second, "three skips", func() bool { // more skips, still one line
		skips, _ = value(f.metrics(), "prober_runs_skipped_total", "flow", "slow")
		return skips >= 3
	})
	lines := 0
	for _, l := range f.log.lines(t) {
		switch l["msg"] {
		case "runs_skipped":
			lines++
		case "run_skipped":
			t.Fatalf("a line per skip: %v", l)
		}
	}
	if skips < 3 || lines != 1 {
		t.Fatalf("%v skips logged in %d lines, want one summary line", skips, lines)
	}
}
