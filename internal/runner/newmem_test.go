//go:build !race

// The race detector grows every allocation: retained-heap bounds hold
// without it only.

package runner

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/secret"
)

// What New keeps per flow when the flows of a prober share transports (the
// daemon): the Flow, 32 bytes, its options shared by every flow made with
// the same ones. Each Flow held a copy of the Options and its own
// User-Agent string: 144 bytes (1.4 MB at 10,000 flows).
func TestNewRetainedPerFlow(t *testing.T) {
	const flows = 10000
	cfgs := make([]*config.Flow, flows) // the configuration's: not counted
	def := &config.FlowDef{Schedule: config.Schedule{Every: time.Minute}}
	for i := range cfgs {
		cfgs[i] = &config.Flow{Name: fmt.Sprintf("flow-%05d", i), FlowDef: def}
	}
	o := Options{Version: "v1.2.3", Region: "eu-west-1", Secrets: &secret.Set{}, Transports: NewTransports(),
		Sampled: func(string) bool { return true }}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fls := make([]*Flow, flows)
	for i, c := range cfgs {
		f, err := New(c, o)
		if err != nil {
			t.Fatal(err)
		}
		fls[i] = f
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perFlow := float64(after.HeapAlloc-before.HeapAlloc)/flows - 8 // less fls's slot
	runtime.KeepAlive(fls)
	runtime.KeepAlive(cfgs)
	if perFlow > 40 {
		t.Errorf("New keeps %.0f bytes a flow, want <= 40", perFlow)
	}
	t.Logf("%.0f bytes a flow", perFlow)
	// Shared only where equal: other options, or another func value with
	// the same code, make other options.
	if fls[0].opts != fls[flows-1].opts {
		t.Error("flows made with the same options hold two copies")
	}
	o2 := o
	o2.Region = "us-east-1"
	o3 := o
	o3.Sampled = func(string) bool { return false }
	o4 := o
	o4.DialContext = func(context.Context, string, string) (net.Conn, error) { return nil, nil }
	for _, x := range []Options{o2, o3, o4} {
		f, err := New(cfgs[0], x)
		if err != nil {
			t.Fatal(err)
		}
		if f.opts == fls[0].opts || f.opts.Region != x.Region || f.opts.Sampled("") != x.Sampled("") || (f.opts.DialContext == nil) != (x.DialContext == nil) {
			t.Errorf("options %+v: shares another's", x)
		}
	}
	if got := fls[0].opts.userAgent; got != "prober/v1.2.3" {
		t.Errorf("User-Agent %q", got)
	}
}

// A flow whose settings another flow of the prober has allocates its Flow
// and nothing else: no TLS config, dialer or map made and dropped (New
// made 5 allocations a flow, 4 of them garbage at every load).
func TestNewAllocatesOnlyItsFlow(t *testing.T) {
	def := &config.FlowDef{Schedule: config.Schedule{Every: time.Minute}}
	cfg := &config.Flow{Name: "checkout", FlowDef: def,
		Steps: []*config.Step{{StepDef: &config.StepDef{Name: "home"}, Spec: &config.HTTPSpec{}},
			{StepDef: &config.StepDef{Name: "pay"}, Spec: &config.HTTPSpec{}}}}
	o := Options{Version: "v1", Region: "eu", Secrets: &secret.Set{}, Transports: NewTransports()}
	if _, err := New(cfg, o); err != nil { // the first makes the pool and options
		t.Fatal(err)
	}
	n := testing.AllocsPerRun(100, func() {
		if _, err := New(cfg, o); err != nil {
			t.Fatal(err)
		}
	})
	if n > 1 {
		t.Errorf("New allocates %v times, want 1 (the Flow)", n)
	}
}
