package alert

import (
	"context"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/fakes"
)

const slackToken = "xoxb-SLACKTOKENSECRET-4242"

func newSlackAPI(t *testing.T, s *fakes.Slack, token, channel string, logs *syncBuffer) Notifier {
	t.Helper()
	o := NotifierOptions{Rate: 1000, Burst: 1000}
	if logs != nil {
		o.Logger = testLogger(logs)
	}
	n, err := BuildSlack("slack", s.APIURL, token, channel, "", o)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func newSlackHook(t *testing.T, url string, logs *syncBuffer) Notifier {
	t.Helper()
	o := NotifierOptions{Rate: 1000, Burst: 1000}
	if logs != nil {
		o.Logger = testLogger(logs)
	}
	n, err := BuildSlack("slack-hook", "", "", "", url, o)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func headerOf(m fakes.SlackMessage) string {
	for _, b := range m.Blocks {
		if b["type"] == "header" {
			if txt, ok := b["text"].(map[string]any); ok {
				s, _ := txt["text"].(string)
				return s
			}
		}
	}
	return ""
}

// Through the dispatcher: the thread memory carries the trigger's message
// to its reminder and resolve, an outage delays without losing, and no
// secret reaches the logs.
func TestSlackThroughDispatcher(t *testing.T) {
	s := fakes.NewSlack(slackToken, "#alerts")
	defer s.Close()
	api := newSlackAPI(t, s, slackToken, "#alerts", nil)
	hook := newSlackHook(t, s.WebhookURL, nil)
	o := fastOptions()
	o.MinBackoff, o.MaxBackoff = 5*time.Millisecond, 20*time.Millisecond
	h := newHarness(t, o, api, hook)
	enqueue := func(notifier string, kind Kind) {
		p := samplePage(kind)
		n := &Notification{Notifier: notifier, AlertKey: p.DedupKey, Page: *p}
		if err := h.db.Update(func(tx *Tx) error { return tx.Enqueue(n) }); err != nil {
			t.Fatal(err)
		}
	}
	// A count, not a time: a timed outage could end before a loaded
	// machine sends the first page, and then nothing is retried.
	s.FailNext(2, 503, 0)
	for _, k := range []Kind{Trigger, Reminder, Resolve} {
		enqueue("slack", k)
		enqueue("slack-hook", k)
	}
	h.run()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitMessages(ctx, 6); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "empty outbox", func() bool { return len(h.pending()) == 0 })
	h.stop()

	var top, replies, hooks int
	var orig fakes.SlackMessage
	for _, m := range s.Messages() {
		switch {
		case m.Via == "webhook":
			hooks++
		case m.ThreadTS != "":
			replies++
		default:
			top++
			orig = m
		}
	}
	if top != 1 || replies != 2 || hooks != 3 {
		t.Errorf("api top-level %d, replies %d, webhook %d; want 1, 2, 3", top, replies, hooks)
	}
	if orig.Updates != 1 || headerOf(orig) != "✅ RESOLVED · checkout_failing" {
		t.Errorf("original: %+v", orig)
	}
	if th := h.thread("slack", samplePage(Trigger).DedupKey); th != "" {
		t.Errorf("thread memory kept after resolve: %q", th)
	}
	if len(h.logs.lines(t, "page_retry")) == 0 {
		t.Error("the outage caused no retries")
	}
	assertNoSecrets(t, h.logs.String(), slackToken, s.WebhookURL, "/services/T000/B000/XXXX")
}

func TestHumanDuration(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{30 * time.Second, "30s"}, {47 * time.Minute, "47m"}, {2 * time.Hour, "2h"},
		{2*time.Hour + 5*time.Minute, "2h5m"}, {72 * time.Hour, "3d"}, {76 * time.Hour, "3d4h"},
	} {
		if got := HumanDuration(tt.d); got != tt.want {
			t.Errorf("HumanDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}
