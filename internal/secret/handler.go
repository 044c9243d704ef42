package secret

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strings"
)

// NewHandler returns a slog.Handler that redacts every record (its message
// and every attribute, groups and structured values included) with the set
// secrets returns at the time, then passes it to next. secrets may return
// nil: the records then pass unchanged. Every log line the prober writes
// goes through one of these.
func NewHandler(next slog.Handler, secrets func() *Set) slog.Handler {
	return &handler{next: next, secrets: secrets}
}

type handler struct {
	next    slog.Handler
	secrets func() *Set
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	s := h.secrets()
	if s.Len() == 0 {
		return h.next.Handle(ctx, r)
	}
	if by, _ := ctx.Value(redactedKey{}).(*Set); by == s {
		return h.next.Handle(ctx, r)
	}
	out := slog.NewRecord(r.Time, r.Level, s.Redact(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(s.redactAttr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

type redactedKey struct{}

// Redacted returns ctx saying that every record handled with it has been
// redacted with s already, its message and every attribute: a
// handler of NewHandler whose set in force is s passes such a record on
// untouched rather than build it again (the run log, one line a step and a
// run, redacted once by its writer). A handler holding any other set (a
// reload's) redacts it as any record.
func Redacted(ctx context.Context, s *Set) context.Context {
	return context.WithValue(ctx, redactedKey{}, s)
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	s := h.secrets()
	red := make([]slog.Attr, len(as))
	for i, a := range as {
		red[i] = s.redactAttr(a)
	}
	return &handler{next: h.next.WithAttrs(red), secrets: h.secrets}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{next: h.next.WithGroup(name), secrets: h.secrets}
}

func (s *Set) redactAttr(a slog.Attr) slog.Attr {
	// Keys too: a group's keys may be data (a step kind's attribute names).
	a.Key = s.Redact(a.Key)
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, s.Redact(v.String()))
	case slog.KindGroup:
		g := v.Group()
		red := make([]any, len(g))
		for i, m := range g {
			red[i] = s.redactAttr(m)
		}
		return slog.Group(a.Key, red...)
	case slog.KindAny:
		return slog.Attr{Key: a.Key, Value: s.redactAny(v.Any())}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// redactAny redacts a structured value as the JSON handler would write it.
func (s *Set) redactAny(x any) slog.Value {
	switch x := x.(type) {
	case error:
		return slog.StringValue(s.Redact(x.Error()))
	case fmt.Stringer:
		return slog.StringValue(s.Redact(x.String()))
	}
	b, err := json.Marshal(x)
	if err != nil {
		return slog.StringValue(s.Redact(fmt.Sprint(x)))
	}
	red := s.Redact(string(b))
	if !json.Valid([]byte(red)) { // a raw form matched across JSON syntax
		return slog.StringValue(red)
	}
	return slog.AnyValue(json.RawMessage(red))
}

// StdLog returns a standard-library logger whose every line becomes one
// record of l at level Warn, with msg as its message and the line as its
// "text": for the standard library's own messages (net/http's client and
// server), which would otherwise bypass both the JSON format and the
// redactor.
func StdLog(l *slog.Logger, msg string) *log.Logger {
	return log.New(lineWriter{l, msg}, "", 0)
}

type lineWriter struct {
	l   *slog.Logger
	msg string
}

func (w lineWriter) Write(p []byte) (int, error) {
	w.l.Warn(w.msg, "text", strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// Writer returns a writer that redacts each write with the set secrets
// returns at the time, for outputs written a whole message at a time (a
// console notifier, a report rendered into a buffer first).
func Writer(w io.Writer, secrets func() *Set) io.Writer { return redactingWriter{w, secrets} }

type redactingWriter struct {
	w       io.Writer
	secrets func() *Set
}

func (r redactingWriter) Write(p []byte) (int, error) {
	s := r.secrets()
	if s.Len() == 0 {
		return r.w.Write(p)
	}
	if _, err := io.WriteString(r.w, s.Redact(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}
