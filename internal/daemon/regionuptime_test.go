package daemon

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
)

// In the evaluate role the flow page shows uptime per region, read from
// the configured Prometheus (the regions' results are only there); with
// Prometheus gone the page still answers, saying unknown.
func TestEvaluateFlowPageRegionUptime(t *testing.T) {
	var queries atomic.Int32
	var down atomic.Bool
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		q := r.Form.Get("query")
		queries.Add(1)
		if down.Load() || r.URL.Path != "/api/v1/query" || !strings.HasPrefix(q, `sum by (region, result) (increase(prober_runs_total{flow="f"}[`) {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, `{"status":"error","errorType":"unavailable","error":"no answer for %q"}`, q)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"success","data":{"resultType":"vector","result":[`+
			`{"metric":{"region":"a","result":"success"},"value":[1,"99"]},{"metric":{"region":"a","result":"failure"},"value":[1,"1"]},`+
			`{"metric":{"region":"b","result":"success"},"value":[1,"100"]},{"metric":{"region":"b","result":"failure"},"value":[1,"0"]}]}}`)
	}))
	defer prom.Close()
	fsys := fstest.MapFS{
		"probes.yaml": {Data: []byte(fmt.Sprintf("flows: [f.yaml]\nprometheus: {url: %q, timeout: 2s}\n", prom.URL))},
		"f.yaml":      {Data: []byte("name: f\nsteps:\n  - name: a\n    request: {url: \"http://127.0.0.1:1/\"}\n")},
	}
	page := func(d *Daemon) (int, string) {
		rec := httptest.NewRecorder()
		d.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/flows/f", nil))
		return rec.Code, rec.Body.String()
	}

	d, err := New(Options{ConfigFS: fsys, ConfigPath: "probes.yaml", Role: RoleEvaluate})
	if err != nil {
		t.Fatal(err)
	}
	code, body := page(d)
	for _, w := range []string{`<h2>Uptime per region</h2>`, `<tr><td>a</td><td class="up fail"`, `>99.00%</td>`, `<tr><td>b</td><td class="up pass"`, `>100.00%</td>`} {
		if code != 200 || !strings.Contains(body, w) {
			t.Errorf("%d: flow page lacks %q", code, w)
		}
	}
	if n := queries.Load(); n != 3 {
		t.Errorf("%d queries, want 3 (24h, 7d, 30d)", n)
	}

	down.Store(true)
	d2, err := New(Options{ConfigFS: fsys, ConfigPath: "probes.yaml", Role: RoleEvaluate})
	if err != nil {
		t.Fatal(err)
	}
	if code, body := page(d2); code != 200 || !strings.Contains(body, `<span class="up nodata">unknown</span>`) {
		t.Errorf("Prometheus down: %d\n%s", code, body)
	}

	// The other roles have their own history: no table per region.
	d3, err := New(Options{ConfigFS: fsys, ConfigPath: "probes.yaml", Role: RoleProbe, StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer d3.closeArchive()
	if _, body := page(d3); strings.Contains(body, "per region") {
		t.Error("a table per region in the probe role")
	}
}
