package daemon

import (
	"context"
	"errors"
	"time"

	"github.com/prober-dev/prober/internal/web"
)

// webRegions is the evaluate role's uptime per region, read from the
// Prometheus of the configuration in force (the pages cache it).
type webRegions struct{ d *Daemon }

func (w webRegions) RegionUptime(ctx context.Context, flow string, window time.Duration, at time.Time) ([]web.RegionCount, error) {
	u := w.d.uptime.Load()
	if u == nil {
		return nil, errors.New("no Prometheus configured")
	}
	rs, err := u.RegionUptime(ctx, flow, window, at)
	if err != nil {
		return nil, err
	}
	out := make([]web.RegionCount, len(rs))
	for i, r := range rs {
		out[i] = web.RegionCount{Region: r.Region, Good: r.Good, Total: r.Total}
	}
	return out, nil
}
