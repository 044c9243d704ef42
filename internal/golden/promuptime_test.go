package golden

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/config"
)

// TestPromUptimeRegions: the flow page's uptime per region is one query
// per window, final runs (prober_runs_total) by region and result, at the
// time asked; regions sorted, a region without runs absent; a failing
// Prometheus is an error (the page shows unknown).
func TestPromUptimeRegions(t *testing.T) {
	f := newPromAPIFake()
	const (
		q24h = `sum by (region, result) (increase(prober_runs_total{flow="checkout"}[1d]))`
		q7d  = `sum by (region, result) (increase(prober_runs_total{flow="checkout"}[1w]))`
		q30d = `sum by (region, result) (increase(prober_runs_total{flow="checkout"}[30d]))`
	)
	f.answer(q24h,
		ser(1438.5, "region", "us-east-1", "result", "success"), ser(1.5, "region", "us-east-1", "result", "failure"),
		ser(1440, "region", "eu-west-1", "result", "success"), ser(0, "region", "eu-west-1", "result", "failure"))
	f.answer(q7d) // no runs at all
	f.fail(q30d, http.StatusServiceUnavailable)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	api, err := NewPromAPI(&config.Prometheus{URL: srv.URL, Timeout: 2 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	u := NewPromUptime(api, nil)
	ctx := context.Background()

	tests := []struct {
		name   string
		window time.Duration
		want   string
		err    bool
	}{
		{"24h", 24 * time.Hour, "[{eu-west-1 1440 1440} {us-east-1 1438.5 1440}]", false},
		{"7d without runs", 7 * 24 * time.Hour, "[]", false},
		{"30d Prometheus failing", 30 * 24 * time.Hour, "[]", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := u.RegionUptime(ctx, "checkout", tt.window, now)
			if (err != nil) != tt.err || fmt.Sprint(got) != tt.want {
				t.Errorf("got %v (%v), want %s (error %v)", got, err, tt.want, tt.err)
			}
		})
	}
	calls := f.takeCalls()
	if len(calls) != 3 {
		t.Fatalf("%d queries, want 3: %+v", len(calls), calls)
	}
	for i, want := range []string{q24h, q7d, q30d} {
		if calls[i].Query != want || calls[i].Time != at(now) {
			t.Errorf("query %d: %s at %s, want %s at %s", i, calls[i].Query, calls[i].Time, want, at(now))
		}
	}
}
