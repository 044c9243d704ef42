// Package runlog writes runs as structured log lines: one per step and one
// per run, with the trace and span ids that find the same requests in the
// system's own logs.
package runlog

import (
	"context"
	"log/slog"
	"time"

	"github.com/prober-dev/prober/internal/result"
)

// Logger logs runs. Passed steps and runs log at INFO, failed ones at WARN:
// a failing target is the prober working, not the prober failing; ERROR is
// kept for the prober's own faults.
type Logger struct {
	l *slog.Logger
}

// New logs through l.
func New(l *slog.Logger) *Logger { return &Logger{l: l} }

// Observe logs each step of r, then r.
func (lg *Logger) Observe(r *result.Run) {
	ctx := context.Background()
	h := lg.l.Handler()
	for i := range r.Steps {
		s := &r.Steps[i]
		level := slog.LevelInfo
		if s.Status == result.Failed {
			level = slog.LevelWarn
		}
		if !h.Enabled(ctx, level) {
			continue
		}
		attrs := make([]slog.Attr, 0, 16)
		attrs = append(attrs,
			slog.String("flow", r.Flow),
			slog.String("step", s.Name),
			slog.String("region", r.Region),
			slog.String("trace_id", r.TraceID),
			slog.String("span_id", s.SpanID),
			slog.Float64("duration_ms", ms(s)),
			slog.String("status", string(s.Status)),
			slog.String("class", string(s.Class)),
		)
		if s.HTTPStatus != 0 {
			attrs = append(attrs, slog.Int("http_status", s.HTTPStatus))
		}
		if s.Method != "" && s.URL != "" {
			attrs = append(attrs, slog.String("method", s.Method), slog.String("url", s.URL))
		}
		if s.Kind != "" {
			attrs = append(attrs, slog.String("kind", s.Kind))
		}
		if len(s.Attrs) > 0 { // a step kind's own part, whatever the kind
			group := make([]any, len(s.Attrs))
			for i, a := range s.Attrs {
				group[i] = slog.String(a.Name, a.Value)
			}
			attrs = append(attrs, slog.Group("attrs", group...))
		}
		if s.Attempts > 1 {
			attrs = append(attrs, slog.Int("attempts", s.Attempts))
		}
		if s.Dependency != "" {
			attrs = append(attrs, slog.String("dependency", s.Dependency))
		}
		if s.Cleanup {
			attrs = append(attrs, slog.Bool("cleanup", true))
		}
		if m := s.Message(); m != "" {
			attrs = append(attrs, slog.String("error", m))
		}
		emit(ctx, h, level, "step", attrs)
	}
	level := slog.LevelInfo
	if !r.OK() {
		level = slog.LevelWarn
	}
	if !h.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("flow", r.Flow),
		slog.String("region", r.Region),
		slog.String("trace_id", r.TraceID),
		slog.String("run_id", r.ID),
		slog.Float64("duration_ms", float64(r.Duration.Microseconds())/1000),
		slog.String("status", string(r.Status)),
		slog.String("class", string(r.Class)),
		slog.Float64("lateness_ms", float64(r.Start.Sub(r.Planned).Microseconds())/1000),
	}
	if !r.OK() {
		attrs = append(attrs, slog.String("failed_step", r.FailedStep), slog.String("error", r.Summary()))
	}
	emit(ctx, h, level, "run", attrs)
}

// emit hands a line to the handler as Logger.LogAttrs would, less the
// caller's program counter (runtime.Callers, a stack walk per line) that
// only a handler with AddSource shows: where runlog is, not the run.
func emit(ctx context.Context, h slog.Handler, level slog.Level, msg string, attrs []slog.Attr) {
	rec := slog.NewRecord(time.Now(), level, msg, 0)
	rec.AddAttrs(attrs...)
	_ = h.Handle(ctx, rec)
}

func ms(s *result.Step) float64 { return float64(s.Duration.Microseconds()) / 1000 }
