// Package alerttest holds what the notifier packages' tests share: a
// sample page, a buffer safe for concurrent writes, a JSON logger into it
// and a check that no secret leaked.
package alerttest

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/prober-dev/prober/internal/alert"
	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/golden"
)

// SamplePage is a page with every field set, as the lifecycle renders one.
func SamplePage(kind alert.Kind) *alert.Page {
	at := time.Date(2026, 11, 23, 2, 16, 0, 0, time.UTC)
	return &alert.Page{
		Kind:      kind,
		DedupKey:  "checkout_failing/flow=checkout",
		Rule:      "checkout_failing",
		Group:     "payments",
		Severity:  "critical",
		Summary:   `checkout failing in 3/3 regions for 2m; step pay: json.status == "success" failed, got "processing"`,
		Source:    "prober (regions a, b, c)",
		Component: "checkout",
		Class:     "swallowed_error",
		Labels:    map[string]string{"team": "payments", "tier": "critical"},
		Details: []alert.Field{
			{Name: "step", Value: "pay"},
			{Name: "gateway success", Value: "0% (was 99.8%)"},
			{Name: "trace", Value: "4bf92f3577b34da6a3ce929d0e0e4736"},
			{Name: "step", Value: "confirm"},
		},
		Links: []alert.Link{
			{Name: "dashboard", URL: "https://grafana.example/d/checkout"},
			{Name: "logs", URL: "https://logs.example/search?q=4bf92f35"},
		},
		At:    at,
		Since: at.Add(-2 * time.Minute),
	}
}

// Buffer is a bytes.Buffer safe for concurrent use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Logger logs JSON into buf, debug and up.
func Logger(buf *Buffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// NoSecrets fails t when text holds any of secrets (quoting only a prefix).
func NoSecrets(t testing.TB, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("secret %q leaked in: %s", s[:min(6, len(s))]+"…", text)
		}
	}
}

// Load loads a probes.yaml of one flow with notifiers (the YAML of the
// notifiers: mapping, flow style) and secrets S (env S) and OPT (optional,
// unset), registering kinds. It returns the config, or the errors one a
// line, as `prober validate` shows them.
func Load(t testing.TB, notifiers string, secretS string, kinds ...config.NotifierKind) (*config.Config, []string) {
	t.Helper()
	probes := "flows: [f.yaml]\nsecrets: {S: {env: S}, OPT: {env: OPT, optional: true}}\nnotifiers: " + notifiers + "\n"
	fsys := fstest.MapFS{"probes.yaml": {Data: []byte(probes)},
		"f.yaml": {Data: []byte("name: f\nsteps:\n  - name: a\n    request: {url: \"http://127.0.0.1:1/\"}\n")}}
	cfg, err := config.Load(fsys, "probes.yaml", config.Options{Notifiers: kinds, Env: func(k string) (string, bool) {
		if k == "S" {
			return secretS, true
		}
		return "", false
	}})
	if err != nil {
		return nil, strings.Split(err.Error(), "\n")
	}
	return cfg, nil
}

// Lines are the JSON log lines in the buffer whose msg is msg (all for "").
func (s *Buffer) Lines(t testing.TB, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if msg == "" || m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// FireAndResolve runs one incident through the real pipeline (manager,
// bbolt outbox, dispatcher with millisecond backoff) to the notifier n
// built from cfg's first notifier: the rule checkout_failing fires, then
// resolves an hour later, and it returns once both pages left the outbox
// (failing t after 10s). The dispatcher logs into logs.
func FireAndResolve(t testing.TB, cfg *config.Config, n alert.Notifier, logs *Buffer) {
	t.Helper()
	rule := &config.Rule{Name: "checkout_failing", Kind: config.FlowFailing, Severity: "critical", FlowFailing: &config.FlowFailingRule{MinRegions: 1}}
	a := &config.Alerting{Notifiers: cfg.Alerting.Notifiers, Routes: cfg.Alerting.Routes, Rules: []*config.Rule{rule}}
	db, err := alert.OpenDB(filepath.Join(t.TempDir(), "alerts.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithCancel(context.Background())
	d := alert.NewDispatcher(db, []alert.Notifier{n}, alert.DispatcherOptions{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		PollInterval: 20 * time.Millisecond, SendTimeout: 5 * time.Second, Logger: Logger(logs)})
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	defer func() { cancel(); <-done }()
	m := alert.NewManager(db, a, d.Kick, alert.ManagerOptions{Source: "prober (region a)", Logger: Logger(logs)})
	eval := func(st golden.Status) []golden.Evaluation {
		return []golden.Evaluation{{Rule: rule, Status: st, Severity: "critical", Value: "failing in 1/1 regions",
			Labels: map[string]string{"rule": rule.Name, "flow": "checkout"}, Summary: "checkout failing in 1/1 regions"}}
	}
	// Polled, not synctest: the dispatcher waits on real sockets and bbolt.
	waitEmpty := func() {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			und, err := d.Undelivered()
			if err == nil && len(und) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("still in the outbox: %+v, %v", und, err)
			}
		}
	}
	now := time.Now()
	if err := m.Process(ctx, eval(golden.Firing), now); err != nil {
		t.Fatal(err)
	}
	waitEmpty()
	if err := m.Process(ctx, eval(golden.OK), now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	waitEmpty()
}
