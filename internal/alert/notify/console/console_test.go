package console

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/prober-dev/prober/internal/alert"
	"github.com/prober-dev/prober/internal/alert/alerttest"
)

func TestConsoleBlocks(t *testing.T) {
	var out alerttest.Buffer
	c := New("console", &out)
	if c.Name() != "console" || c.Type() != Type {
		t.Errorf("Name, Type = %q, %q", c.Name(), c.Type())
	}
	ctx := context.Background()
	p := alerttest.SamplePage(alert.Trigger)
	p.Details = append(p.Details, alert.Field{Name: "note", Value: "line one\nline two"})
	th, err := c.Send(ctx, p, "kept")
	if err != nil || th != "kept" {
		t.Fatalf("Send = %q, %v", th, err)
	}
	want := `PAGE trigger critical [checkout_failing] checkout failing in 3/3 regions for 2m; step pay: json.status == "success" failed, got "processing"
    dedup_key: checkout_failing/flow=checkout
    source: prober (regions a, b, c)
    since: 2026-11-23T02:14:00Z
    component: checkout
    class: swallowed_error
    step: pay
    gateway success: 0% (was 99.8%)
    trace: 4bf92f3577b34da6a3ce929d0e0e4736
    step: confirm
    note: line one
        line two
    labels: team=payments tier=critical
    dashboard: https://grafana.example/d/checkout
    logs: https://logs.example/search?q=4bf92f35
`
	if got := out.String(); got != want {
		t.Errorf("trigger block:\n%s\nwant:\n%s", got, want)
	}
	for _, tt := range []struct {
		kind alert.Kind
		line string
	}{
		{alert.Resolve, "    resolved_after: 2m\n"},
		{alert.Reminder, "    failing_for: 2m\n"},
	} {
		out = alerttest.Buffer{}
		if _, err := c.Send(ctx, alerttest.SamplePage(tt.kind), ""); err != nil {
			t.Fatal(err)
		}
		got := out.String()
		if !strings.HasPrefix(got, "PAGE "+string(tt.kind)+" critical [checkout_failing] checkout failing") || !strings.Contains(got, tt.line) {
			t.Errorf("%s block:\n%s", tt.kind, got)
		}
	}
}

func TestConsoleConcurrentPagesDoNotInterleave(t *testing.T) {
	var out alerttest.Buffer
	c := New("console", &out)
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = c.Send(context.Background(), alerttest.SamplePage(alert.Trigger), "")
		}()
	}
	wg.Wait()
	blocks := strings.Split(out.String(), "PAGE ")[1:]
	if len(blocks) != 20 {
		t.Fatalf("%d blocks", len(blocks))
	}
	for _, b := range blocks {
		if strings.Count(b, "\n") != 13 || !strings.HasSuffix(b, "logs: https://logs.example/search?q=4bf92f35\n") {
			t.Errorf("interleaved block: %q", b)
		}
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestConsoleWriteErrorIsRetryable(t *testing.T) {
	_, err := New("c", failWriter{}).Send(context.Background(), alerttest.SamplePage(alert.Trigger), "")
	var de *alert.DeliveryError
	if err == nil || errors.As(err, &de) {
		t.Errorf("Send = %v, want a plain (retryable) error", err)
	}
}

// A note that a member resolved while its incident stays open reads as
// such, not as "Still failing" of the resolved rule (moved from alert's
// TestMemberResolvedNoteRendering with the notifier).
func TestMemberResolvedNote(t *testing.T) {
	note := alerttest.SamplePage(alert.Reminder)
	note.Note = "checkout_failing resolved (condition cleared); still firing: checkout_slo (warning)"
	var out bytes.Buffer
	if _, err := New("console", &out).Send(context.Background(), note, ""); err != nil {
		t.Fatal(err)
	}
	if first, _, _ := strings.Cut(out.String(), "\n"); first != "PAGE reminder critical [checkout_failing] "+note.Note ||
		strings.Contains(out.String(), "failing_for") {
		t.Errorf("console:\n%s", out.String())
	}
}
