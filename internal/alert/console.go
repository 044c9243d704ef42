package alert

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prober-dev/prober/internal/config"
)

type consoleNotifier struct {
	name string
	mu   sync.Mutex // one page's lines stay together
	w    io.Writer
}

// NewConsole returns a notifier that writes each page to w as a readable
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
func NewConsole(name string, w io.Writer) Notifier {
	return &consoleNotifier{name: name, w: w}
}

func (c *consoleNotifier) Name() string              { return c.name }
func (c *consoleNotifier) Type() config.NotifierType { return config.Console }

func (c *consoleNotifier) Send(ctx context.Context, p *Page, thread string) (string, error) {
	var b strings.Builder
	headline := p.Summary
	if p.Kind == Reminder && p.Note != "" {
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
	case Resolve:
		if d := slackFor(p); d != "" {
			line("resolved_after", d)
		}
	case Reminder:
		if d := slackFor(p); d != "" && p.Note == "" {
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
