package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/alert"
	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/golden"
)

// Through the real pipeline: the manager pages, the dispatcher delivers,
// retrying a 503 and a 429 as it does for every notifier, and the
// incident's trigger and resolve reach the receiver once each, signed,
// under one dedup key.
func TestDispatcherRetriesAndDedup(t *testing.T) {
	var (
		mu     sync.Mutex
		faults = []int{http.StatusServiceUnavailable, http.StatusTooManyRequests}
		got    []alert.Page
		tries  int
	)
	r := &receiver{t: t, secret: testSecret}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if req.Method == http.MethodPost {
			tries++
		}
		if req.Method == http.MethodPost && len(faults) > 0 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(faults[0])
			faults = faults[1:]
			return
		}
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		if req.Method == http.MethodPost {
			var p alert.Page
			if err := json.Unmarshal(r.bodies[len(r.bodies)-1], &p); err != nil {
				t.Error(err)
			}
			got = append(got, p)
		}
		w.WriteHeader(rec.Code)
	}))
	defer srv.Close()

	cfg, err := load(t, `  hook: {type: webhook, url: "`+srv.URL+`", secret: "{{secret:HOOK}}"}`+"\n")
	if err != nil {
		t.Fatal(err)
	}
	rule := &config.Rule{Name: "checkout_failing", Kind: config.FlowFailing, Severity: "critical", FlowFailing: &config.FlowFailingRule{MinRegions: 1}}
	a := &config.Alerting{Notifiers: cfg.Alerting.Notifiers, Routes: cfg.Alerting.Routes, Rules: []*config.Rule{rule}}
	n, err := Plugin{}.New(a.Notifiers[0], alert.NotifierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	db, err := alert.OpenDB(filepath.Join(t.TempDir(), "alerts.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithCancel(context.Background())
	d := alert.NewDispatcher(db, []alert.Notifier{n}, alert.DispatcherOptions{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		PollInterval: 20 * time.Millisecond, SendTimeout: 5 * time.Second})
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	defer func() { cancel(); <-done }()
	m := alert.NewManager(db, a, d.Kick, alert.ManagerOptions{Source: "prober (region a)"})

	eval := func(st golden.Status) []golden.Evaluation {
		return []golden.Evaluation{{Rule: rule, Status: st, Severity: "critical", Value: "failing in 1/1 regions",
			Labels: map[string]string{"rule": rule.Name, "flow": "checkout"}, Summary: "checkout failing in 1/1 regions"}}
	}
	// Polled, not synctest: the dispatcher waits on a real socket and bbolt.
	wait := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			mu.Lock()
			l := len(got)
			mu.Unlock()
			if l >= n {
				return
			}
		}
		t.Fatalf("%d pages delivered, want %d", len(got), n)
	}
	now := time.Now()
	if err := m.Process(ctx, eval(golden.Firing), now); err != nil {
		t.Fatal(err)
	}
	wait(1)
	if err := m.Process(ctx, eval(golden.OK), now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	wait(2)
	// The outbox empties once the dispatcher has read the last answer.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		und, err := d.Undelivered()
		if err == nil && len(und) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still in the outbox: %+v, %v", und, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0].Kind != alert.Trigger || got[1].Kind != alert.Resolve || got[0].DedupKey == "" || got[0].DedupKey != got[1].DedupKey {
		t.Fatalf("delivered %+v", got)
	}
	if tries != 4 {
		t.Errorf("%d POSTs, want 4 (a 503 and a 429 retried, then the trigger and the resolve)", tries)
	}
}
