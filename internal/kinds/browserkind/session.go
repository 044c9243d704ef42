package browserkind

import (
	"context"
	"io"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
)

// session is a run's incognito browser context (runner.RunScoped): its
// browser steps open their pages in it, so cookies and storage carry from
// step to step and never to another run. It holds a browser_concurrency
// slot from its first step to the run's end.
type session struct {
	b       *browser
	release func()          // the slot; nil until acquired
	bctx    context.Context // the browser it was made in; nil before
	id      cdp.BrowserContextID
	shots   int // screenshots the run took (ShotsPerRun)
}

// RunKey implements runner.RunScoped: the kind's steps share a run's
// context.
func (s *Spec) RunKey() any { return s.k }

// NewRun implements runner.RunScoped; nothing starts until a step runs.
func (s *Spec) NewRun() io.Closer { return &session{b: s.k.b} }

// crashError is the error of a step after the browser crashed in an
// earlier step of its run: what the run built (a login) is gone.
type crashError struct{}

func (crashError) Error() string {
	return "the browser crashed earlier in this run (its cookies and storage are gone)"
}

// open returns the browser's context and the run's browser context id,
// making them on the run's first browser step: a slot, the browser
// (started when none runs), a fresh incognito context.
func (ss *session) open(ctx context.Context) (context.Context, cdp.BrowserContextID, error) {
	if ss.id != "" {
		if ss.bctx.Err() != nil {
			return nil, "", crashError{}
		}
		return ss.bctx, ss.id, nil
	}
	if ss.release == nil {
		rel, err := ss.b.acquire(ctx)
		if err != nil {
			return nil, "", errNoSlot
		}
		ss.release = rel
	}
	bctx, err := ss.b.get(ctx)
	if err != nil {
		return nil, "", err
	}
	res, err := cdp.Call(ctx, chromedp.FromContext(bctx).Browser, target.CreateBrowserContext, target.CreateBrowserContextParams{})
	if err != nil {
		return nil, "", err
	}
	ss.bctx, ss.id = bctx, res.BrowserContextID
	return bctx, ss.id, nil
}

// disposeTimeout bounds the disposal of a run's context at its end.
const disposeTimeout = 10 * time.Second

// Close implements io.Closer: the run ended; its context (and any page
// left in it) goes, and its slot is free.
func (ss *session) Close() error {
	var err error
	if ss.id != "" && ss.bctx.Err() == nil {
		ctx, cancel := context.WithTimeout(ss.bctx, disposeTimeout)
		_, err = cdp.Call(ctx, chromedp.FromContext(ss.bctx).Browser, target.DisposeBrowserContext,
			target.DisposeBrowserContextParams{BrowserContextID: ss.id})
		cancel()
	}
	ss.bctx, ss.id = nil, ""
	if ss.release != nil {
		ss.release()
		ss.release = nil
	}
	return err
}
