package secret

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestHandlerRedactsEveryPart(t *testing.T) {
	const pw = `pw"Leak<Canary>`
	var cur atomic.Pointer[Set]
	cur.Store(NewSet(map[string]string{"PW": pw}))
	var buf bytes.Buffer
	l := slog.New(NewHandler(slog.NewJSONHandler(&buf, nil), cur.Load))
	type payload struct {
		Body  string
		Bytes []byte
	}
	l.With("url", "https://x/?k="+pw).WithGroup("g").Info("failed: "+pw,
		"error", errors.New("dial "+pw),
		"struct", payload{Body: "echo " + pw, Bytes: []byte("u:" + pw)},
		slog.Group("inner", "v", pw, "n", 3),
		slog.Group("attrs", "key "+pw, "a step kind's attribute named by data"),
		"fine", "nothing to hide")
	out := buf.String()
	c := newChecker(pw)
	if l := c.leak(out); l != "" {
		t.Fatalf("leak: %s", l)
	}
	if strings.Count(out, "[secret:PW]") < 5 || !strings.Contains(out, "nothing to hide") || !json.Valid(buf.Bytes()) {
		t.Fatalf("output %s", out)
	}

	// The set is read at each record: a reload's new secret is redacted.
	buf.Reset()
	cur.Store(NewSet(map[string]string{"NEW": "new-Secret-Value"}))
	l.Info("x", "v", "new-Secret-Value")
	if strings.Contains(buf.String(), "new-Secret-Value") {
		t.Fatal(buf.String())
	}
	// Without secrets, records pass unchanged.
	buf.Reset()
	cur.Store(nil)
	l.Info("plain", "v", "new-Secret-Value")
	if !strings.Contains(buf.String(), "new-Secret-Value") {
		t.Fatal(buf.String())
	}
}

func TestStdLogIsJSONAndRedacted(t *testing.T) {
	var buf bytes.Buffer
	s := NewSet(map[string]string{"K": "Leak-Canary-42"})
	std := StdLog(slog.New(NewHandler(slog.NewJSONHandler(&buf, nil), func() *Set { return s })), "go_log")
	std.Printf("Unsolicited response received on idle HTTP channel starting with %q; err=<nil>", "HTTP/1.1 200 OK\r\n\r\nLeak-Canary-42")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("not one JSON line: %q", buf.String())
	}
	if rec["msg"] != "go_log" || rec["level"] != "WARN" || !strings.Contains(rec["text"].(string), "Unsolicited response") ||
		strings.Contains(buf.String(), "Leak-Canary-42") {
		t.Fatalf("record %s", buf.String())
	}
}

func BenchmarkHandler(b *testing.B) {
	s := benchSet()
	l := slog.New(NewHandler(slog.NewJSONHandler(io.Discard, nil), func() *Set { return s }))
	plain := slog.New(slog.NewJSONHandler(io.Discard, nil))
	for name, l := range map[string]*slog.Logger{"redacted": l, "plain": plain} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				l.Info("step", "flow", "checkout", "step", "pay", "region", "eu-west-1", "trace_id", "4bf92f3577b34da6a3ce929d0e0e4736",
					"duration_ms", 12.5, "status", 200, "class", "ok", "url", "https://shop.example/api/orders/123/pay")
			}
		})
	}
}

// TestHandlerPassesRedactedRecords: a record marked as redacted with the
// set the handler holds passes as it is (its writer redacted it); marked
// with another set, or not at all, it is redacted.
func TestHandlerPassesRedactedRecords(t *testing.T) {
	const pw = "pw-7d1e-LeakCanary"
	s := NewSet(map[string]string{"PW": pw})
	var buf bytes.Buffer
	h := NewHandler(slog.NewJSONHandler(&buf, nil), func() *Set { return s })
	for _, tc := range []struct {
		name string
		ctx  context.Context
		pass bool
	}{
		{"marked with the set in force", Redacted(context.Background(), s), true},
		{"marked with an earlier set", Redacted(context.Background(), NewSet(map[string]string{"PW": pw})), false},
		{"marked with no set", Redacted(context.Background(), nil), false},
		{"unmarked", context.Background(), false},
	} {
		buf.Reset()
		rec := slog.NewRecord(time.Now(), slog.LevelInfo, "run", 0)
		rec.AddAttrs(slog.String("error", "got "+pw))
		if err := h.Handle(tc.ctx, rec); err != nil {
			t.Fatal(err)
		}
		if passed := strings.Contains(buf.String(), pw); passed != tc.pass {
			t.Errorf("%s: passed unchanged %v, want %v: %s", tc.name, passed, tc.pass, buf.String())
		}
	}
}
