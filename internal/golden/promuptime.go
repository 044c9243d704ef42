package golden

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"

	"github.com/prober-dev/prober/internal/rulekind"
)

// PromUptime reads flows' uptime per region from a Prometheus-compatible
// API: in the evaluate role every region's results exist only there. It
// counts final runs (prober_runs_total, as the burn-rate rules do) and
// caches nothing: the pages that ask keep the answers (web.RegionUptimes).
type PromUptime struct{ q *promQL }

// NewPromUptime reads uptime through a (NewPromAPI); logger nil: NewPromAPI's.
func NewPromUptime(a v1.API, logger *slog.Logger) *PromUptime {
	return &PromUptime{q: newPromQL(a, logger)}
}

// RegionUptime counts flow's final runs over the window of length window
// ending at at, per region (sorted), and those that passed. Counts are
// Prometheus's increase(): extrapolated, so not whole numbers. A region
// without runs in the window is absent.
func (u *PromUptime) RegionUptime(ctx context.Context, flow string, window time.Duration, at time.Time) ([]RegionRatio, error) {
	v, err := u.q.vector(ctx, rulekind.FlowRegionRunsQuery(flow, window), at)
	if err != nil {
		return nil, fmt.Errorf("uptime of %s per region: %w", flow, err)
	}
	return regionRatios(v), nil
}
