package browserkind

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/chromedp/chromedp"
)

// Viewport is the window every page gets: a laptop's, so layouts (a
// consent banner over the pay button) match what most customers see.
const (
	ViewportWidth  = 1280
	ViewportHeight = 800
)

// Binaries are the names looked up on PATH when Options.Chromium is "":
// Debian's package first.
var Binaries = []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"}

// browser is the one Chromium process of a prober: started on first use,
// started again after it crashed, stopped by Close. Runs get incognito
// browser contexts in it (session), at most slots' limit at once.
type browser struct {
	path  string // Options.Chromium
	slots slots  // a slot per run's open context

	mu     sync.Mutex
	closed bool
	ctx    context.Context // the browser's chromedp context; nil before first use
	stop   func()          // kills the process and its allocator
	starts int             // how many processes were started, for tests
	// starting is closed when the start under way ends; nil when none.
	starting chan struct{}
	startErr error // of the last start
}

func newBrowser(path string, concurrency int) *browser {
	b := &browser{path: path}
	b.slots.setLimit(concurrency)
	return b
}

// acquire waits for a free context slot (browser_concurrency), up to ctx.
func (b *browser) acquire(ctx context.Context) (release func(), err error) {
	return b.slots.acquire(ctx)
}

// slots bound the runs with a context open: a counting semaphore whose
// limit a reload may change (runs holding a slot keep it; no new one
// starts until the count is under the new limit).
type slots struct {
	mu          sync.Mutex
	limit, used int
	changed     chan struct{} // closed (and replaced) when a slot frees or the limit grows
}

// setLimit sets the limit; n <= 0 is DefaultConcurrency.
func (s *slots) setLimit(n int) {
	if n <= 0 {
		n = DefaultConcurrency
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limit = n
	s.wake()
}

func (s *slots) wake() {
	if s.changed != nil {
		close(s.changed)
	}
	s.changed = make(chan struct{})
}

// max is the limit, for messages.
func (s *slots) max() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limit
}

func (s *slots) acquire(ctx context.Context) (func(), error) {
	for {
		s.mu.Lock()
		if s.used < s.limit {
			s.used++
			s.mu.Unlock()
			var once sync.Once
			return func() {
				once.Do(func() {
					s.mu.Lock()
					s.used--
					s.wake()
					s.mu.Unlock()
				})
			}, nil
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// errNoSlot is the error of a step that found no free slot in time.
var errNoSlot = errors.New("no browser slot free")

// errClosed is the error of a step that runs while the daemon shuts down.
var errClosed = errors.New("the browser is shut down")

// StartTimeout bounds a browser's start. A start outlives the step that
// asked for it (a step times out, the next one finds the browser up): on a
// busy machine Chromium takes longer to start than a short step lasts.
const StartTimeout = time.Minute

// get returns the running browser's context, starting a browser when there
// is none or the last one died. It waits for the start up to ctx; the
// process lives until Close (or its crash), not until ctx ends.
func (b *browser) get(ctx context.Context) (context.Context, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, errClosed
	}
	if b.ctx != nil && b.ctx.Err() == nil {
		defer b.mu.Unlock()
		return b.ctx, nil
	}
	if b.starting == nil {
		if b.stop != nil { // it crashed: free what is left of it
			b.stop()
			b.ctx, b.stop = nil, nil
		}
		b.starting = make(chan struct{})
		go b.start(b.starting)
	}
	done := b.starting
	b.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return nil, errClosed
	case b.ctx != nil && b.ctx.Err() == nil:
		return b.ctx, nil
	case b.startErr != nil:
		return nil, b.startErr
	}
	return nil, errors.New("the browser died as it started")
}

// start starts a browser process and closes done.
func (b *browser) start(done chan struct{}) {
	bctx, stop, err := launch(b.path)
	b.mu.Lock()
	defer b.mu.Unlock()
	defer close(done)
	b.starting, b.startErr = nil, err
	if err != nil {
		return
	}
	if b.closed { // Close came during the start
		stop()
		return
	}
	b.ctx, b.stop = bctx, stop
	b.starts++
}

// launch starts Chromium: its chromedp context, and what kills it.
func launch(path string) (context.Context, func(), error) {
	path, err := findChromium(path)
	if err != nil {
		return nil, nil, err
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.WindowSize(ViewportWidth, ViewportHeight),
	)
	if os.Geteuid() == 0 {
		// Chromium refuses to run as root with its sandbox; elsewhere the
		// sandbox stays.
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	quiet := func(string, ...any) {} // its messages may hold URLs with secrets
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithBrowserOption(
		chromedp.WithBrowserLogf(quiet), chromedp.WithBrowserErrorf(quiet), chromedp.WithBrowserDebugf(quiet)))
	stop := func() { bcancel(); acancel() }
	// The first Do binds the process to bctx, which has no deadline; the
	// timeout only bounds the wait.
	errc := make(chan error, 1)
	go func() { errc <- chromedp.Do(bctx) }()
	timer := time.NewTimer(StartTimeout)
	defer timer.Stop()
	select {
	case err = <-errc:
	case <-timer.C:
		err = fmt.Errorf("not up within %s", StartTimeout)
	}
	if err != nil {
		stop()
		return nil, nil, fmt.Errorf("starting %s: %w", path, err)
	}
	return bctx, stop, nil
}

// pid is the browser process's id, 0 when none runs (for tests).
func (b *browser) pid() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ctx == nil || b.ctx.Err() != nil {
		return 0
	}
	if c := chromedp.FromContext(b.ctx); c != nil && c.Browser != nil && c.Browser.Process() != nil {
		return c.Browser.Process().Pid
	}
	return 0
}

// close stops the browser; later steps fail with errClosed.
func (b *browser) close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.stop != nil {
		b.stop()
		b.ctx, b.stop = nil, nil
	}
	return nil
}

// findChromium is path when set, else the first of Binaries on PATH.
func findChromium(path string) (string, error) {
	if path != "" {
		p, err := exec.LookPath(path)
		if err != nil {
			return "", fmt.Errorf("chromium %s: %w", path, err)
		}
		return p, nil
	}
	for _, name := range Binaries {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no chromium on PATH (looked for %v): install Debian's chromium package", Binaries)
}
