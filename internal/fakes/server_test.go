package fakes

import (
	"context"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PagerDuty/go-pagerduty"
	"github.com/slack-go/slack"
)

// fakeGoroutines lists the goroutines running code of this package, other
// than the test itself.
func fakeGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "internal/fakes.(*base)") || strings.Contains(g, "internal/fakes.(*PagerDuty)") ||
			strings.Contains(g, "internal/fakes.(*Slack)") {
			out = append(out, g)
		}
	}
	return out
}

// TestCloseLeavesNothingRunning closes fakes while requests sleep in
// latency, while a waiter blocks, and after keep-alive connections, and
// checks that no goroutine of the package survives.
func TestCloseLeavesNothingRunning(t *testing.T) {
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	p := NewPagerDuty()
	s := NewSlack(botToken)
	pc := pagerduty.NewClient("", pagerduty.WithV2EventsAPIEndpoint(p.URL))
	pc.HTTPClient = hc
	sc := slack.New(botToken, slack.OptionAPIURL(s.APIURL), slack.OptionHTTPClient(hc))
	ctx := context.Background()

	// Keep-alive connections exist.
	if _, err := pc.ManageEventWithContext(ctx, trigger(rk1, "k", "s")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sc.PostMessageContext(ctx, "#a", slack.MsgOptionText("x", false)); err != nil {
		t.Fatal(err)
	}
	// Requests sleeping in a long latency, and waiters.
	p.SetLatency(time.Hour)
	s.SetLatency(time.Hour)
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = pc.ManageEventWithContext(ctx, trigger(rk1, "k", "s")) })
	wg.Go(func() { _, _, _ = sc.PostMessageContext(ctx, "#a", slack.MsgOptionText("x", false)) })
	wg.Go(func() { _ = p.WaitEvents(ctx, 100) })
	wg.Go(func() { _ = s.WaitMessages(ctx, 100) })
	deadline := time.Now().Add(5 * time.Second)
	for p.Requests() < 2 || s.Requests() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("requests did not arrive")
		}
		time.Sleep(5 * time.Millisecond)
	}

	if len(fakeGoroutines()) == 0 {
		t.Fatal("the leak check sees no goroutine of the fakes while they run")
	}

	closed := make(chan struct{})
	go func() {
		p.Close()
		s.Close()
		p.Close() // twice is fine
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close blocked on a sleeping request")
	}
	wg.Wait() // clients got errors, waiters ErrClosed

	for {
		left := fakeGoroutines()
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline.Add(5 * time.Second)) {
			t.Fatalf("goroutines left after Close:\n%s", strings.Join(left, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
