package golden

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// promAPIFake speaks the Prometheus HTTP API's /api/v1/query and
// /api/v1/query_exemplars with canned answers keyed by the query text. A
// query it has no answer for is an error naming it: the PromQL a source
// sends is part of its contract, and the tests assert it this way.
type promAPIFake struct {
	mu        sync.Mutex
	answers   map[string][]byte // query -> whole response body
	status    map[string]int    // query -> HTTP status (with an error body)
	exemplars []byte            // query_exemplars' body; nil: no exemplars
	exStatus  int
	calls     []promCall
	delay     time.Duration // every answer waits this long (or the request's end)
}

type promCall struct {
	Path, Query, Time, Start, End string
}

func newPromAPIFake() *promAPIFake {
	return &promAPIFake{answers: map[string][]byte{}, status: map[string]int{}}
}

func (f *promAPIFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c := promCall{Path: r.URL.Path, Query: r.Form.Get("query"), Time: r.Form.Get("time"),
		Start: r.Form.Get("start"), End: r.Form.Get("end")}
	f.mu.Lock()
	f.calls = append(f.calls, c)
	body, ok := f.answers[c.Query]
	status := f.status[c.Query]
	ex, exStatus, delay := f.exemplars, f.exStatus, f.delay
	f.mu.Unlock()
	if delay > 0 {
		select {
		case <-r.Context().Done():
			return
		case <-time.After(delay):
		}
	}
	w.Header().Set("Content-Type", "application/json")
	switch c.Path {
	case "/api/v1/query":
		switch {
		case status != 0:
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"status":"error","errorType":"unavailable","error":"canned %d"}`, status)
		case !ok:
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"status":"error","errorType":"bad_data","error":%q}`, "no canned answer for "+c.Query)
		default:
			w.Write(body)
		}
	case "/api/v1/query_exemplars":
		switch {
		case exStatus != 0:
			w.WriteHeader(exStatus)
			fmt.Fprint(w, `{"status":"error","errorType":"unavailable","error":"exemplars unavailable"}`)
		case c.Query != exemplarSelector:
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"status":"error","errorType":"bad_data","error":%q}`, "unexpected exemplar query "+c.Query)
		case ex == nil:
			fmt.Fprint(w, `{"status":"success","data":[]}`)
		default:
			w.Write(ex)
		}
	default:
		http.Error(w, "not found: "+c.Path, http.StatusNotFound)
	}
}

// answer sets a query's vector answer.
func (f *promAPIFake) answer(query string, ss ...series) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[query] = vectorBody(ss)
	delete(f.status, query)
}

func (f *promAPIFake) fail(query string, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status[query] = status
}

func (f *promAPIFake) takeCalls() []promCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

// queries is the calls' queries, sorted.
func queries(calls []promCall) []string {
	var q []string
	for _, c := range calls {
		q = append(q, c.Query)
	}
	slices.Sort(q)
	return q
}

// series is one sample of a vector answer.
type series struct {
	labels map[string]string
	value  float64
}

// ser is a series of value with labels given as name, value pairs.
func ser(value float64, kv ...string) series {
	l := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		l[kv[i]] = kv[i+1]
	}
	return series{l, value}
}

func vectorBody(ss []series) []byte {
	type sample struct {
		Metric map[string]string `json:"metric"`
		Value  [2]any            `json:"value"`
	}
	res := make([]sample, 0, len(ss))
	for _, s := range ss {
		res = append(res, sample{s.labels, [2]any{float64(now.Unix()), strconv.FormatFloat(s.value, 'f', -1, 64)}})
	}
	b, _ := json.Marshal(map[string]any{"status": "success", "data": map[string]any{"resultType": "vector", "result": res}})
	return b
}

// unix is t as a gauge of seconds holds it.
func unix(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

// probe is what one region's prober exports about one flow.
type probe struct {
	flow, region string
	last, since  time.Time // zero last: no final run since the prober started
	ok           bool
	step, class  string
	dep, exp     string
	gone         bool      // the target went away: its series are stale
	seenLast     time.Time // the day's newest run start, when not last
	labels       []string  // more target labels (instance, job)
}

func (p probe) lbl(kv ...string) []string {
	l := append([]string{"flow", p.flow, "region", p.region}, p.labels...)
	return append(l, kv...)
}

// setProbes answers the state queries and the day-long list from probes.
func (f *promAPIFake) setProbes(ps ...probe) {
	var last, success, since, failure, seen []series
	seenMax := map[[2]string]float64{}
	var seenOrder [][2]string
	for _, p := range ps {
		k := [2]string{p.flow, p.region}
		if _, ok := seenMax[k]; !ok {
			seenOrder = append(seenOrder, k)
		}
		seenMax[k] = max(seenMax[k], unix(p.last), unix(p.seenLast))
		if p.gone {
			continue
		}
		last = append(last, ser(unix(p.last), p.lbl("__name__", queryLastRun)...))
		ok := 0.0
		if p.ok {
			ok = 1
		}
		success = append(success, ser(ok, p.lbl("__name__", querySuccess)...))
		since = append(since, ser(unix(p.since), p.lbl("__name__", querySince)...))
		if !p.ok && !p.last.IsZero() {
			failure = append(failure, ser(unix(p.last), p.lbl("__name__", queryFailure,
				"step", p.step, "class", p.class, "dependency", p.dep, "expectation", p.exp)...))
		}
	}
	for _, k := range seenOrder {
		seen = append(seen, ser(seenMax[k], "flow", k[0], "region", k[1]))
	}
	f.answer(queryLastRun, last...)
	f.answer(querySuccess, success...)
	f.answer(querySince, since...)
	f.answer(queryFailure, failure...)
	f.answer(querySeen, seen...)
}

// exemplar is a trace id on a failing run's counter.
type exemplar struct {
	flow, region, trace string
	at                  time.Time
}

func (f *promAPIFake) setExemplars(ex ...exemplar) {
	type e struct {
		Labels    map[string]string `json:"labels"`
		Value     string            `json:"value"`
		Timestamp float64           `json:"timestamp"`
	}
	type res struct {
		SeriesLabels map[string]string `json:"seriesLabels"`
		Exemplars    []e               `json:"exemplars"`
	}
	var out []*res
	by := map[[2]string]*res{}
	for _, x := range ex {
		k := [2]string{x.flow, x.region}
		r := by[k]
		if r == nil {
			r = &res{SeriesLabels: map[string]string{"__name__": "prober_runs_total", "flow": x.flow, "region": x.region,
				"result": "failure", "class": "swallowed_error"}}
			by[k] = r
			out = append(out, r)
		}
		r.Exemplars = append(r.Exemplars, e{map[string]string{"trace_id": x.trace}, "1", unix(x.at)})
	}
	b, _ := json.Marshal(map[string]any{"status": "success", "data": out})
	f.mu.Lock()
	f.exemplars = b
	f.mu.Unlock()
}

// at is a time as the client sends it.
func at(t time.Time) string {
	return strconv.FormatFloat(unix(t), 'f', -1, 64)
}

func mustContain(t *testing.T, what, s string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(s, p) {
			t.Errorf("%s %q does not contain %q", what, s, p)
		}
	}
}
