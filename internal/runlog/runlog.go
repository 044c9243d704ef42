// Package runlog writes runs as structured log lines: one per step and one
// per run, with the trace and span ids that find the same requests in the
// system's own logs.
package runlog

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/secret"
)

// Logger logs runs. Passed steps and runs log at INFO, failed ones at WARN:
// a failing target is the prober working, not the prober failing; ERROR is
// kept for the prober's own faults.
type Logger struct {
	l *slog.Logger
	// marked is the context of the last set ObserveRedacted was given
	// (secret.Redacted), kept so that a run's lines do not allocate one:
	// the set changes only at a reload.
	marked atomic.Pointer[markedCtx]
}

type markedCtx struct {
	set *secret.Set
	ctx context.Context
}

// New logs through l.
func New(l *slog.Logger) *Logger { return &Logger{l: l} }

// Observe logs each step of r, then r, leaving redaction to l's handler.
func (lg *Logger) Observe(r *result.Run) { lg.ObserveRedacted(r, nil) }

// ObserveRedacted logs r as Observe does, each line redacted here with
// secrets, the set r's runner redacted with, and marked so
// (secret.Redacted): the daemon's redacting handler, while its set is the
// same, passes the lines on rather than build every one again. A nil set
// leaves the lines to the handler.
func (lg *Logger) ObserveRedacted(r *result.Run, secrets *secret.Set) {
	ctx := context.Background()
	if secrets.Len() > 0 {
		ctx = lg.mark(secrets)
	}
	// Every string of a line is redacted here, as the handler will not:
	// names and ids the runner never redacted, and its redacted texts again
	// (a scan that finds nothing allocates nothing), so that the lines'
	// guarantee does not rest on the runner's.
	red := secrets.Redact
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
			slog.String("flow", red(r.Flow)),
			slog.String("step", red(s.Name)),
			slog.String("region", red(r.Region)),
			slog.String("trace_id", red(r.TraceID)),
			slog.String("span_id", red(s.SpanID)),
			slog.Float64("duration_ms", ms(s)),
			slog.String("status", red(string(s.Status))),
			slog.String("class", red(string(s.Class))),
		)
		if s.HTTPStatus != 0 {
			attrs = append(attrs, slog.Int("http_status", s.HTTPStatus))
		}
		if s.Method != "" && s.URL != "" {
			attrs = append(attrs, slog.String("method", red(s.Method)), slog.String("url", red(s.URL)))
		}
		if s.Kind != "" {
			attrs = append(attrs, slog.String("kind", red(s.Kind)))
		}
		if len(s.Attrs) > 0 { // a step kind's own part, whatever the kind
			group := make([]any, len(s.Attrs))
			for i, a := range s.Attrs {
				group[i] = slog.String(red(a.Name), red(a.Value))
			}
			attrs = append(attrs, slog.Group("attrs", group...))
		}
		if s.Attempts > 1 {
			attrs = append(attrs, slog.Int("attempts", s.Attempts))
		}
		if s.Dependency != "" {
			attrs = append(attrs, slog.String("dependency", red(s.Dependency)))
		}
		if s.Cleanup {
			attrs = append(attrs, slog.Bool("cleanup", true))
		}
		if m := s.Message(); m != "" {
			attrs = append(attrs, slog.String("error", red(m)))
		}
		emit(ctx, h, level, red("step"), attrs)
	}
	level := slog.LevelInfo
	if !r.OK() {
		level = slog.LevelWarn
	}
	if !h.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("flow", red(r.Flow)),
		slog.String("region", red(r.Region)),
		slog.String("trace_id", red(r.TraceID)),
		slog.String("run_id", red(r.ID)),
		slog.Float64("duration_ms", float64(r.Duration.Microseconds())/1000),
		slog.String("status", red(string(r.Status))),
		slog.String("class", red(string(r.Class))),
		slog.Float64("lateness_ms", float64(r.Start.Sub(r.Planned).Microseconds())/1000),
	}
	if !r.OK() {
		attrs = append(attrs, slog.String("failed_step", red(r.FailedStep)), slog.String("error", red(r.Summary())))
	}
	emit(ctx, h, level, red("run"), attrs)
}

// mark returns the context that says lines were redacted with s.
func (lg *Logger) mark(s *secret.Set) context.Context {
	if m := lg.marked.Load(); m != nil && m.set == s {
		return m.ctx
	}
	m := &markedCtx{set: s, ctx: secret.Redacted(context.Background(), s)}
	lg.marked.Store(m)
	return m.ctx
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

// Marked is the set the last lines redacted here were marked with, nil if
// none: for the daemon's test that its runs take this path.
func (lg *Logger) Marked() *secret.Set {
	if m := lg.marked.Load(); m != nil {
		return m.set
	}
	return nil
}
