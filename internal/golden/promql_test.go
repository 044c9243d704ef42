package golden

import (
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/store"
)

// fakeProm speaks enough of the Prometheus HTTP API (/api/v1/query) to
// test the client: answers are chosen by the query text.
type fakeProm struct {
	mu   sync.Mutex
	reqs []*http.Request
	form []map[string]string
}

func (f *fakeProm) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/prom/api/v1/query" {
		http.Error(w, "not found: "+r.URL.Path, http.StatusNotFound)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, r)
	f.form = append(f.form, map[string]string{"query": r.Form.Get("query"), "time": r.Form.Get("time"),
		"timeout": r.Form.Get("timeout"), "method": r.Method, "auth": r.Header.Get("Authorization")})
	f.mu.Unlock()
	ok := func(resultType, result string, extra string) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":%q,"result":%s}%s}`, resultType, result, extra)
	}
	switch q := r.Form.Get("query"); q {
	case "vector":
		ok("vector", `[{"metric":{"__name__":"shop:5xx_ratio","job":"shop"},"value":[1793671560.5,"0.21"]},
			{"metric":{"job":"db"},"value":[1793671560.5,"NaN"]}]`, `,"warnings":["some series dropped"],"infos":["fyi"]`)
	case "scalar":
		ok("scalar", `[1793671560,"42"]`, "")
	case "empty":
		ok("vector", `[]`, "")
	case "matrix":
		ok("matrix", `[{"metric":{},"values":[[1,"1"]]}]`, "")
	case "string":
		ok("string", `[1,"x"]`, "")
	case "histogram":
		ok("vector", `[{"metric":{"job":"a"},"histogram":[1,{"count":"2","sum":"3","buckets":[]}]},{"metric":{"job":"b"},"value":[1,"7"]}]`, "")
	case "bad":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected end of input"}`)
	case "down":
		http.Error(w, "upstream connect error", http.StatusBadGateway)
	case "garbage":
		fmt.Fprint(w, `<html>not json</html>`)
	case "slow":
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	case "getonly":
		if r.Method != http.MethodGet {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		ok("vector", `[{"metric":{"job":"ro"},"value":[1,"1"]}]`, "")
	default:
		http.Error(w, "unexpected query "+q, http.StatusTeapot)
	}
}

func (f *fakeProm) last() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.form[len(f.form)-1]
}

func TestPromQLQueries(t *testing.T) {
	fp := &fakeProm{}
	srv := httptest.NewServer(fp)
	defer srv.Close()
	var logs bytes.Buffer
	q, err := NewPromQL(&config.Prometheus{URL: srv.URL + "/prom/", Timeout: 500 * time.Millisecond},
		slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		query string
		want  string // samples, or the error's text
		err   bool
	}{
		{"vector", `[map[__name__:shop:5xx_ratio job:shop]=0.21 map[job:db]=NaN]`, false},
		{"scalar", `[map[]=42]`, false},
		{"empty", `[]`, false},
		{"histogram", `[map[job:b]=7]`, false},
		{"getonly", `[map[job:ro]=1]`, false},
		{"matrix", `range vector`, true},
		{"string", `unexpected value type "string"`, true},
		{"bad", `bad_data: 1:5: parse error: unexpected end of input`, true},
		{"down", `server error: 502`, true},
		{"garbage", `bad_response`, true},
		{"slow", `no answer within 500ms`, true},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			start := time.Now()
			samples, err := q.Query(context.Background(), tt.query, now)
			if tt.err {
				if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), `"`+tt.query+`"`) ||
					!strings.Contains(err.Error(), srv.URL) {
					t.Errorf("error %v, want one naming the query, the server and %q", err, tt.want)
				}
				if time.Since(start) > 3*time.Second {
					t.Errorf("took %s", time.Since(start))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var parts []string
			for _, s := range samples {
				parts = append(parts, fmt.Sprintf("%v=%v", s.Labels, s.Value))
			}
			if got := "[" + strings.Join(parts, " ") + "]"; got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
	f := fp.last()
	if f["timeout"] != "500ms" {
		t.Errorf("timeout sent: %q", f["timeout"])
	}
	fp.mu.Lock()
	first := fp.form[0]
	fp.mu.Unlock()
	if first["method"] != http.MethodPost || first["time"] != "1793672160" {
		t.Errorf("first request %v: want a form POST at the evaluation time", first)
	}
	if !strings.Contains(logs.String(), "promql_warnings") || !strings.Contains(logs.String(), "some series dropped") ||
		!strings.Contains(logs.String(), "promql_histograms_skipped") {
		t.Errorf("logs: %s", logs.String())
	}
	// Zero time: now.
	if _, err := q.Query(context.Background(), "empty", time.Time{}); err != nil || fp.last()["time"] == "" {
		t.Errorf("zero time sent %q (%v)", fp.last()["time"], err)
	}
}

func TestPromQLAuth(t *testing.T) {
	fp := &fakeProm{}
	srv := httptest.NewServer(fp)
	defer srv.Close()
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte("s3cret-token\n"), 0o600)
	q, err := NewPromQL(&config.Prometheus{URL: srv.URL + "/prom", BearerTokenFile: tokenFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Query(context.Background(), "empty", now); err != nil {
		t.Fatal(err)
	}
	if got := fp.last()["auth"]; got != "Bearer s3cret-token" {
		t.Errorf("auth %q", got)
	}
	// A rotated token is read at the next query.
	os.WriteFile(tokenFile, []byte("rotated"), 0o600)
	q.Query(context.Background(), "empty", now)
	if got := fp.last()["auth"]; got != "Bearer rotated" {
		t.Errorf("after rotation: %q", got)
	}
	// A token file gone: an error that does not show the old token.
	os.Remove(tokenFile)
	if _, err := q.Query(context.Background(), "empty", now); err == nil || strings.Contains(err.Error(), "rotated") {
		t.Errorf("missing token file: %v", err)
	}
	if _, err := NewPromQL(&config.Prometheus{URL: srv.URL, BearerTokenFile: tokenFile}, nil); err == nil {
		t.Error("a missing token file at start is not an error")
	}
	os.WriteFile(tokenFile, []byte(" \n"), 0o600)
	if _, err := NewPromQL(&config.Prometheus{URL: srv.URL, BearerTokenFile: tokenFile}, nil); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("an empty token file at start: %v", err)
	}

	q, err = NewPromQL(&config.Prometheus{URL: srv.URL + "/prom", BasicAuthUser: "grafana", BasicAuthPass: "pa55"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	q.Query(context.Background(), "empty", now)
	fp.mu.Lock()
	r := fp.reqs[len(fp.reqs)-1]
	fp.mu.Unlock()
	if u, p, ok := r.BasicAuth(); !ok || u != "grafana" || p != "pa55" {
		t.Errorf("basic auth %q %q %v", u, p, ok)
	}
	if _, err := q.Query(context.Background(), "bad", now); err == nil || strings.Contains(err.Error(), "pa55") {
		t.Errorf("error leaks the password: %v", err)
	}
}

func TestPromQLTLSAndConfig(t *testing.T) {
	srv := httptest.NewTLSServer(&fakeProm{})
	defer srv.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	q, err := NewPromQL(&config.Prometheus{URL: srv.URL + "/prom", CAPEM: ca}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Query(context.Background(), "scalar", now); err != nil {
		t.Errorf("with the CA: %v", err)
	}
	q, _ = NewPromQL(&config.Prometheus{URL: srv.URL + "/prom"}, nil)
	if _, err := q.Query(context.Background(), "scalar", now); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("without the CA: %v", err)
	}
	for _, cfg := range []*config.Prometheus{nil, {}, {URL: "ftp://x"}, {URL: "http://"}, {URL: "::"},
		{URL: srv.URL, CAPEM: []byte("not pem")}} {
		if _, err := NewPromQL(cfg, nil); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
	q, _ = NewPromQL(&config.Prometheus{URL: "http://user:hunter2@127.0.0.1:1/"}, nil)
	if _, err := q.Query(context.Background(), "up", now); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error leaks the URL's password: %v", err)
	}
}

// TestPromQLThroughEngine runs a promql rule and signal end to end: engine,
// store source, client, HTTP.
func TestPromQLThroughEngine(t *testing.T) {
	srv := httptest.NewServer(&fakeProm{})
	defer srv.Close()
	q, err := NewPromQL(&config.Prometheus{URL: srv.URL + "/prom"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := rule("shop_errors", config.PromQL)
	r.PromQL = &config.PromQLRule{Query: "vector", Op: ">", Value: 0.05}
	a := &config.Alerting{Rules: []*config.Rule{r}, Signals: []*config.Signal{{Name: "answer", PromQLQuery: "scalar"}}}
	evs := NewEngine(a, NewStoreSource(store.New(1), nil, q), Options{}).Evaluate(context.Background(), now)
	if len(evs) != 2 || evs[0].Status != Firing || evs[1].Status != Unknown {
		t.Fatalf("%+v", evs)
	}
	if want := `shop_errors {job="shop"}: 0.21 > 0.05; answer 42 (was 42)`; evs[0].Summary != want {
		t.Errorf("summary %q, want %q", evs[0].Summary, want)
	}
	// Without Prometheus, the store source says so.
	evs = NewEngine(a, NewStoreSource(store.New(1), nil, nil), Options{}).Evaluate(context.Background(), now)
	if len(evs) != 1 || evs[0].Status != Unknown || evs[0].Err != ErrNoPromQL {
		t.Errorf("%+v", evs)
	}
}
