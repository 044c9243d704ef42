package runner

import (
	"context"
	"time"
)

// bound is the context the steps of a run share: the run's, and for the
// main steps the flow's timeout. The timeout's own context (a timer, a
// channel, a place among the parent's children) is made only when
// something must wait on it: an attempt whose step timeout ends first is
// bounded by that alone, derived from the run's context, and most runs
// never make it.
type bound struct {
	parent   context.Context
	deadline time.Time // zero: none (cleanup)
	ctx      context.Context
	cancel   context.CancelFunc
}

// context is the bound as a context, made at the first call.
func (b *bound) context() context.Context {
	if b.ctx == nil {
		if b.deadline.IsZero() {
			b.ctx = b.parent
		} else {
			b.ctx, b.cancel = context.WithDeadline(b.parent, b.deadline)
		}
	}
	return b.ctx
}

// attempt is the context of an attempt with timeout d, and its cancel.
func (b *bound) attempt(d time.Duration) (context.Context, context.CancelFunc) {
	if b.ctx == nil && time.Now().Add(d).Before(b.deadline) {
		return context.WithTimeout(b.parent, d) // the flow's timeout cannot end it first
	}
	return context.WithTimeout(b.context(), d)
}

// Deadline is the earlier of the flow's timeout and the parent's deadline.
func (b *bound) Deadline() (time.Time, bool) {
	dl, ok := b.parent.Deadline()
	if !b.deadline.IsZero() && (!ok || b.deadline.Before(dl)) {
		return b.deadline, true
	}
	return dl, ok
}

// expired reports whether the bound has ended: the flow's timeout passed
// or the run's context is done (what ctx.Err() != nil said of the
// timeout's context).
func (b *bound) expired() bool {
	if b.ctx != nil {
		return b.ctx.Err() != nil
	}
	return b.parent.Err() != nil || !b.deadline.IsZero() && !time.Now().Before(b.deadline)
}

// close releases the timeout's context, if made.
func (b *bound) close() {
	if b.cancel != nil {
		b.cancel()
	}
}
