package runner

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// TestTraceparentSampledFlag: the traceparent's sampled flag is whether
// the run is exported (Options.Sampled, asked with the run's trace id):
// 00 for a run the tracer drops, so a backend sampling by its parent
// keeps no orphan spans of it; 01 when it is exported or tracing is off.
func TestTraceparentSampledFlag(t *testing.T) {
	var (
		mu  sync.Mutex
		got []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("Traceparent"))
		mu.Unlock()
	}))
	defer srv.Close()
	for _, tc := range []struct {
		name    string
		sampled func(string) bool
		flags   string
	}{
		{"tracing off", nil, "01"},
		{"exported", func(string) bool { return true }, "01"},
		{"not exported", func(string) bool { return false }, "00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			got = nil
			mu.Unlock()
			var asked []string
			opts := Options{}
			if tc.sampled != nil {
				opts.Sampled = func(tid string) bool { asked = append(asked, tid); return tc.sampled(tid) }
			}
			r := mustRun(t, newFlow(newStep("a", "GET", srv.URL+"/a", "status == 200"), newStep("b", "GET", srv.URL+"/b", "status == 200")), opts)
			if !r.OK() {
				t.Fatalf("run failed: %s", r.Summary())
			}
			mu.Lock()
			defer mu.Unlock()
			if len(got) != 2 {
				t.Fatalf("%d requests", len(got))
			}
			for i, tp := range got {
				if want := "00-" + r.TraceID + "-" + r.Steps[i].SpanID + "-" + tc.flags; tp != want {
					t.Errorf("step %d: traceparent %q, want %q", i, tp, want)
				}
			}
			if tc.sampled != nil && (len(asked) != 1 || asked[0] != r.TraceID) {
				t.Errorf("Sampled asked %v, want once with the run's trace id %s", asked, r.TraceID)
			}
		})
	}
}
