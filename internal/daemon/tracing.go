package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/tracing"
)

// tracerFlushTimeout bounds the export of the last spans at shutdown: a
// tracing backend that is down must not hold the exit.
const tracerFlushTimeout = 5 * time.Second

func newTracer(c *config.Tracing, version string, log *slog.Logger, reg prometheus.Registerer) (*tracing.Tracer, error) {
	ctx := context.Background()
	exp, err := tracing.NewExporter(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	t, err := tracing.New(ctx, tracing.Options{Exporter: exp, Sampling: c.Sampling, Version: version, Logger: log, Registerer: reg})
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	endpoint := c.Endpoint
	if u, err := url.Parse(endpoint); err == nil {
		endpoint = u.Redacted() // a password in the URL is not for the log
	}
	log.Info("tracing_on", "protocol", c.Protocol, "endpoint", endpoint, "sampling", c.Sampling)
	return t, nil
}

// stopTracer exports the queued spans within tracerFlushTimeout (and ctx).
func (d *Daemon) stopTracer(ctx context.Context) {
	if d.tracer == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, tracerFlushTimeout)
	defer cancel()
	if err := d.tracer.Shutdown(ctx); err != nil {
		d.log.Warn("tracing_shutdown", "error", err.Error(), "spans_dropped_total", d.tracer.Dropped())
	}
}

// traceURL is alerting.links.trace of the configuration in force, for the
// pages' trace links.
func (d *Daemon) traceURL() string {
	for _, l := range d.Config().Alerting.Links {
		if l.Name == "trace" {
			return l.URL
		}
	}
	return ""
}
