package config

import (
	"fmt"
	"maps"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"testing/fstest"
	"weak"
)

// genFlow is the load harness's checkout-like flow (bench/load): many
// flows of one shape, as a fleet made from one template is.
func genFlow(i int) string {
	const expect = `    expect: [status == 200, json.status == "success", duration < 2s]` + "\n"
	var b strings.Builder
	fmt.Fprintf(&b, "name: load-%05d\nlabels: {team: load}\nsteps:\n", i)
	fmt.Fprintf(&b, "  - name: login\n    request: {method: POST, url: \"{{target}}/api/login\", json: {user: synthetic-%d, password: not-a-secret}}\n%s    capture: {token: json.token}\n", i, expect)
	fmt.Fprintf(&b, "  - name: order\n    request: {method: POST, url: \"{{target}}/api/orders\", headers: {Authorization: \"Bearer {{token}}\"}, json: {sku: SENTINEL-SKU-1}}\n%s    capture: {order_id: json.order.id}\n", expect)
	fmt.Fprintf(&b, "  - name: pay\n    dependency: bank-gateway\n    request: {method: POST, url: \"{{target}}/api/orders/{{order_id}}/pay\", headers: {Authorization: \"Bearer {{token}}\", Idempotency-Key: \"{{idempotency_key}}\"}, json: {card: \"4242424242424242\", mode: sandbox}}\n%s", expect)
	fmt.Fprintf(&b, "  - name: confirm3\n    request: {url: \"{{target}}/api/orders/{{order_id}}\", headers: {Authorization: \"Bearer {{token}}\"}}\n%s", expect)
	return b.String()
}

// TestRetainedPerStep bounds what a compiled configuration of many
// flows of one shape keeps a step (its flow's part included): the shared
// pieces are kept once, so a flow costs its name, place, vars, labels and
// steps (128 bytes with the pointer to its FlowDef), and what differs
// between flows: here the login's request, whose body names the flow's
// user (its HTTPSpec, its body template, 24 bytes, and source, and its Step; not its
// templates list, which leaves out templates without placeholders). The
// other steps are one Step each, shared by every flow (228 bytes a step
// when each step kept its place and so its own Step, a literal template
// its one segment, and a flow its description; 417 when each step had its
// own 208-byte Step and each flow its 384-byte Flow).
func TestRetainedPerStep(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector grows every allocation")
	}
	const flows, steps = 2000, 4
	// The input is made before the baseline: only what the config keeps
	// is counted.
	fsys := fstest.MapFS{"probes.yaml": &fstest.MapFile{Data: []byte(`region: load
defaults: {every: 60s, timeout: 30s, step_timeout: 10s, headers: {Accept: application/json}}
vars: {target: "http://127.0.0.1:9"}
flows: [flows/*.yaml]
`)}}
	for i := range flows {
		fsys[fmt.Sprintf("flows/load-%05d.yaml", i)] = &fstest.MapFile{Data: []byte(genFlow(i))}
	}
	// CONFIG_HEAP_PROFILE=path writes the loaded configuration's heap
	// profile, every allocation sampled (go test's -memprofile is taken
	// after the configuration is gone).
	if os.Getenv("CONFIG_HEAP_PROFILE") != "" {
		runtime.MemProfileRate = 1
	}
	opts := Options{Notifiers: testKinds, Env: lookup(testEnv)}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cfg, err := Load(fsys, "probes.yaml", opts)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if p := os.Getenv("CONFIG_HEAP_PROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := pprof.WriteHeapProfile(f); err != nil {
			t.Error(err)
		}
		f.Close()
	}
	runtime.KeepAlive(cfg)
	runtime.KeepAlive(fsys) // else freed during Load, and subtracted
	perStep := float64(after.HeapAlloc-before.HeapAlloc) / (flows * steps)
	t.Logf("%.0f bytes retained a step (%d flows of %d steps)", perStep, flows, steps)
	if perStep > 145 {
		t.Errorf("%.0f bytes retained a step, want <= %d", perStep, 145)
	}
	// Still the configuration asked for.
	if len(cfg.Flows) != flows {
		t.Fatalf("%d flows, want %d", len(cfg.Flows), flows)
	}
	for _, fl := range cfg.Flows {
		if len(fl.Steps) != steps || fl.Steps[2].Dependency != "bank-gateway" || len(fl.Steps[0].Expect) != 3 {
			t.Fatalf("flow %s: %+v", fl.Name, fl.Steps)
		}
	}
}

// TestReloadFreesSharedSteps: what a Load shares is its own, so a reload
// that replaces a configuration lets the old one's shared StepDefs go (and
// a failed reload touches nothing of the configuration in use).
func TestReloadFreesSharedSteps(t *testing.T) {
	fsys := fstest.MapFS{"probes.yaml": &fstest.MapFile{Data: []byte("vars: {target: \"http://127.0.0.1:9\"}\nflows: [flows/*.yaml]\n")}}
	for i := range 3 {
		fsys[fmt.Sprintf("flows/load-%05d.yaml", i)] = &fstest.MapFile{Data: []byte(genFlow(i))}
	}
	opts := Options{Notifiers: testKinds, Env: lookup(testEnv)}
	load := func() *Config {
		t.Helper()
		cfg, err := Load(fsys, "probes.yaml", opts)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	// The configuration in use, until the reload below replaces it.
	oldDef := func() weak.Pointer[StepDef] {
		old := load()
		if old.Flows[0].Steps[1].StepDef != old.Flows[2].Steps[1].StepDef {
			t.Fatal("the flows' order steps do not share their StepDef")
		}
		bad := maps.Clone(fsys)
		bad["flows/load-00001.yaml"] = &fstest.MapFile{Data: []byte(strings.Replace(genFlow(1), "status == 200", "status ==", 1))}
		if _, err := Load(bad, "probes.yaml", opts); err == nil {
			t.Fatal("a bad configuration loaded")
		}
		if d := old.Flows[1].Steps[1].StepDef; d != old.Flows[0].Steps[1].StepDef || d.Name != "order" || len(d.Expect) != 3 {
			t.Fatalf("a failed reload changed the configuration in use: %+v", d)
		}
		return weak.Make(old.Flows[0].Steps[1].StepDef)
	}()
	cur := load()
	if cur.Flows[0].Steps[1].StepDef == oldDef.Value() {
		t.Fatal("a new configuration shares the old one's StepDef")
	}
	runtime.GC()
	if oldDef.Value() != nil {
		t.Error("the replaced configuration's shared StepDef is still reachable")
	}
	runtime.KeepAlive(cur)
}
