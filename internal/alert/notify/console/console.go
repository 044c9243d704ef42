// Package console is the console notifier: each page is a readable block
// of lines on the daemon's console writer (stderr, or the demo's printer),
// for `prober demo` and tests.
//
//	notifiers:
//	  console: {type: console}
package console

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prober-dev/prober/internal/alert"
	"github.com/prober-dev/prober/internal/config"
)

// Type is the notifier type's name in probes.yaml.
const Type = "console"

// Plugin registers the console type (daemon/notifiers.go).
type Plugin struct{}

func (Plugin) Type() string   { return Type }
func (Plugin) Keys() []string { return nil }

// Example is a valid block, built by the daemon's tests.
func (Plugin) Example() string { return `{type: console}` }

// Decode reads the block: it has no fields of its own.
func (Plugin) Decode(*config.NotifierBlock) any { return nil }

// New builds the notifier of n, writing to o.Console (redacted by the
// daemon), or to nowhere when there is none.
func (Plugin) New(n *config.Notifier, o alert.NotifierOptions) (alert.Notifier, error) {
	w := o.Console
	if w == nil {
		w = io.Discard
	}
	return New(n.Name, w), nil
}

type consoleNotifier struct {
	name string
	mu   sync.Mutex // one page's lines stay together
	w    io.Writer
}

// New returns a notifier that writes each page to w as a readable
// block (for `prober demo` and tests):
//
//	PAGE trigger critical [checkout_failing] checkout failing in 3/3 regions for 2m; …
//	    dedup_key: checkout_failing/flow=checkout
//	    source: prober (regions a, b, c)
//	    since: 2026-11-23T02:14:00Z
//	    step: pay
//	    dashboard: https://grafana.example/d/checkout
//
// It is safe for concurrent use.
func New(name string, w io.Writer) alert.Notifier {
	return &consoleNotifier{name: name, w: w}
}

func (c *consoleNotifier) Name() string              { return c.name }
func (c *consoleNotifier) Type() config.NotifierType { return Type }

func (c *consoleNotifier) Send(ctx context.Context, p *alert.Page, thread string) (string, error) {
	var b strings.Builder
	headline := p.Summary
	if p.Kind == alert.Reminder && p.Note != "" {
		headline = p.Note // about the incident: its Rule may have resolved
	}
	fmt.Fprintf(&b, "PAGE %s %s [%s] %s\n", p.Kind, cmpOrDash(p.Severity), cmpOrDash(p.Rule), oneLine(headline))
	line := func(name, value string) {
		if value == "" {
			return
		}
		// Continuation lines of a multi-line value stay indented under it.
		fmt.Fprintf(&b, "    %s: %s\n", name, strings.ReplaceAll(value, "\n", "\n        "))
	}
	line("dedup_key", p.DedupKey)
	switch p.Kind {
	case alert.Resolve:
		if d := alert.Elapsed(p); d != "" {
			line("resolved_after", d)
		}
	case alert.Reminder:
		if d := alert.Elapsed(p); d != "" && p.Note == "" {
			line("failing_for", d)
		}
	}
	line("source", p.Source)
	if !p.Since.IsZero() {
		line("since", p.Since.UTC().Format(time.RFC3339))
	}
	line("component", p.Component)
	line("class", p.Class)
	for _, f := range p.Details {
		line(f.Name, f.Value)
	}
	if len(p.Labels) > 0 {
		keys := make([]string, 0, len(p.Labels))
		for k := range p.Labels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + "=" + p.Labels[k]
		}
		line("labels", strings.Join(parts, " "))
	}
	for _, l := range p.Links {
		line(cmpOrDash(l.Name), l.URL)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := io.WriteString(c.w, b.String()); err != nil {
		return thread, fmt.Errorf("console %s: %w", c.name, err)
	}
	return thread, nil
}

func cmpOrDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
