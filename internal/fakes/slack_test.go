package fakes

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

const botToken = "xoxb-fake-token"

func newSlack(t *testing.T, channels ...string) (*Slack, *slack.Client) {
	t.Helper()
	s := NewSlack(botToken, channels...)
	t.Cleanup(s.Close)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c := slack.New(botToken, slack.OptionAPIURL(s.APIURL),
		slack.OptionHTTPClient(&http.Client{Transport: tr, Timeout: 10 * time.Second}))
	return s, c
}

func slackCode(t *testing.T, err error) string {
	t.Helper()
	var e slack.SlackErrorResponse
	if !errors.As(err, &e) {
		t.Fatalf("err = %T %v, want slack.SlackErrorResponse", err, err)
	}
	return e.Err
}

func TestSlackThreadRoundTrip(t *testing.T) {
	s, c := newSlack(t, "#alerts")
	ctx := ctxT(t)

	ch, ts, err := c.PostMessageContext(ctx, "#alerts", slack.MsgOptionText("checkout failing in 3/3 regions", false),
		slack.MsgOptionBlocks(slack.NewSectionBlock(slack.NewTextBlockObject("mrkdwn", "*checkout* failing", false, false), nil, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if ch != s.ChannelID("#alerts") || ch != SlackChannelID("alerts") || !slackIDRe.MatchString(ch) {
		t.Fatalf("channel = %q, want the id of #alerts", ch)
	}
	// Thread and update by the id postMessage returned, as a notifier must.
	_, replyTS, err := c.PostMessageContext(ctx, ch, slack.MsgOptionText("resolved after 4m", false), slack.MsgOptionTS(ts))
	if err != nil {
		t.Fatal(err)
	}
	// A reply to the reply joins the same thread.
	if _, _, err := c.PostMessageContext(ctx, ch, slack.MsgOptionText("more", false), slack.MsgOptionTS(replyTS)); err != nil {
		t.Fatal(err)
	}
	uch, uts, utext, err := c.UpdateMessageContext(ctx, ch, ts, slack.MsgOptionText("RESOLVED: checkout", false))
	if err != nil {
		t.Fatal(err)
	}
	if uch != ch || uts != ts || utext != "RESOLVED: checkout" {
		t.Fatalf("update returned %q %q %q", uch, uts, utext)
	}

	msgs := s.Messages()
	if len(msgs) != 3 {
		t.Fatalf("messages = %+v", msgs)
	}
	root := msgs[0]
	if root.TS != ts || root.Text != "RESOLVED: checkout" || root.UpdatedText != "RESOLVED: checkout" ||
		root.Updates != 1 || root.Via != "api" || root.ThreadTS != "" || len(root.Blocks) != 1 || root.Posted.IsZero() {
		t.Fatalf("root = %+v", root)
	}
	thread := s.Thread(ts)
	if len(thread) != 2 || thread[0].TS != replyTS || thread[0].ThreadTS != ts || thread[1].ThreadTS != ts {
		t.Fatalf("thread = %+v", thread)
	}
	if !tsBefore(msgs[0].TS, msgs[1].TS) || !tsBefore(msgs[1].TS, msgs[2].TS) {
		t.Fatalf("ts not increasing: %s %s %s", msgs[0].TS, msgs[1].TS, msgs[2].TS)
	}
	if !slackTSRe.MatchString(ts) {
		t.Fatalf("ts %q not shaped like Slack's", ts)
	}

	// Blocks are kept by an update without blocks, cleared by an empty list.
	if _, _, _, err := c.UpdateMessageContext(ctx, ch, ts, slack.MsgOptionText("x", false), slack.MsgOptionBlocks()); err != nil {
		t.Fatal(err)
	}
	if m := s.Messages()[0]; len(m.Blocks) != 0 || m.Updates != 2 {
		t.Fatalf("after clearing blocks: %+v", m)
	}
}

func tsBefore(a, b string) bool {
	x, _ := strconv.ParseFloat(a, 64)
	y, _ := strconv.ParseFloat(b, 64)
	return a < b && x <= y
}

func TestSlackAuthTest(t *testing.T) {
	_, c := newSlack(t)
	resp, err := c.AuthTestContext(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if resp.TeamID != SlackTeamID || resp.BotID != SlackBotID || resp.UserID != SlackUserID {
		t.Fatalf("auth.test = %+v", resp)
	}
}

// TestSlackErrors checks each rule through slack-go, which returns
// slack.SlackErrorResponse{Err: code} for an HTTP 200 "ok":false.
func TestSlackErrors(t *testing.T) {
	s, c := newSlack(t, "#alerts", "C0SPECIAL01")
	ctx := ctxT(t)
	ch, ts, err := c.PostMessageContext(ctx, "alerts", slack.MsgOptionText("root", false))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.PostMessageContext(ctx, "C0SPECIAL01", slack.MsgOptionText("by id", false)); err != nil {
		t.Fatal(err)
	}
	_, otherTS, err := c.PostMessageContext(ctx, "C0SPECIAL01", slack.MsgOptionText("elsewhere", false))
	if err != nil {
		t.Fatal(err)
	}
	text := func(s string) slack.MsgOption { return slack.MsgOptionText(s, false) }
	dividers := func(n int) slack.MsgOption {
		bs := make([]slack.Block, n)
		for i := range bs {
			bs[i] = slack.NewDividerBlock()
		}
		return slack.MsgOptionBlocks(bs...)
	}
	attachments := func(n int) slack.MsgOption {
		as := make([]slack.Attachment, n)
		for i := range as {
			as[i] = slack.Attachment{Text: "a"}
		}
		return slack.MsgOptionAttachments(as...)
	}
	section := func(n int) slack.MsgOption {
		return slack.MsgOptionBlocks(slack.NewSectionBlock(slack.NewTextBlockObject("mrkdwn", strings.Repeat("x", n), false, false), nil, nil))
	}
	other := func(token string) *slack.Client { return slack.New(token, slack.OptionAPIURL(s.APIURL)) }

	tests := []struct {
		name string
		call func() error
		want string // "" = success
	}{
		{"wrong token", func() error { _, _, err := other("xoxb-wrong").PostMessageContext(ctx, ch, text("x")); return err }, "invalid_auth"},
		{"no token", func() error { _, _, err := other("").PostMessageContext(ctx, ch, text("x")); return err }, "not_authed"},
		{"auth.test wrong token", func() error { _, err := other("xoxb-wrong").AuthTestContext(ctx); return err }, "invalid_auth"},
		{"unknown channel", func() error { _, _, err := c.PostMessageContext(ctx, "#random", text("x")); return err }, "channel_not_found"},
		{"unknown channel id", func() error { _, _, err := c.PostMessageContext(ctx, "C0NOTTHERE1", text("x")); return err }, "channel_not_found"},
		{"no channel", func() error { _, _, err := c.PostMessageContext(ctx, "", text("x")); return err }, "channel_not_found"},
		{"no text", func() error { _, _, err := c.PostMessageContext(ctx, ch); return err }, "no_text"},
		{"text at the limit", func() error {
			_, _, err := c.PostMessageContext(ctx, ch, text(strings.Repeat("é", SlackMaxText)))
			return err
		}, ""},
		{"text too long", func() error {
			_, _, err := c.PostMessageContext(ctx, ch, text(strings.Repeat("x", SlackMaxText+1)))
			return err
		}, "msg_too_long"},
		{"50 blocks", func() error { _, _, err := c.PostMessageContext(ctx, ch, dividers(50)); return err }, ""},
		{"51 blocks", func() error { _, _, err := c.PostMessageContext(ctx, ch, dividers(51)); return err }, "invalid_blocks"},
		{"section text 3000", func() error { _, _, err := c.PostMessageContext(ctx, ch, section(3000)); return err }, ""},
		{"section text 3001", func() error { _, _, err := c.PostMessageContext(ctx, ch, section(3001)); return err }, "invalid_blocks"},
		{"attachments only", func() error { _, _, err := c.PostMessageContext(ctx, ch, attachments(1)); return err }, ""},
		{"101 attachments", func() error { _, _, err := c.PostMessageContext(ctx, ch, attachments(101)); return err }, "too_many_attachments"},
		{"thread to unknown ts", func() error {
			_, _, err := c.PostMessageContext(ctx, ch, text("x"), slack.MsgOptionTS("1700000000.000100"))
			return err
		}, "thread_not_found"},
		{"thread to another channel's message", func() error {
			_, _, err := c.PostMessageContext(ctx, ch, text("x"), slack.MsgOptionTS(otherTS))
			return err
		}, "thread_not_found"},
		{"malformed thread_ts", func() error {
			_, _, err := c.PostMessageContext(ctx, ch, text("x"), slack.MsgOptionTS("0"))
			return err
		}, "invalid_thread_ts"},
		{"update unknown ts", func() error {
			_, _, _, err := c.UpdateMessageContext(ctx, ch, "1700000000.000100", text("x"))
			return err
		}, "message_not_found"},
		{"update ts of another channel", func() error { _, _, _, err := c.UpdateMessageContext(ctx, ch, otherTS, text("x")); return err }, "message_not_found"},
		{"update by channel name", func() error { _, _, _, err := c.UpdateMessageContext(ctx, "#alerts", ts, text("x")); return err }, "channel_not_found"},
		{"update without content", func() error { _, _, _, err := c.UpdateMessageContext(ctx, ch, ts); return err }, "no_text"},
		{"update text too long", func() error {
			_, _, _, err := c.UpdateMessageContext(ctx, ch, ts, text(strings.Repeat("x", SlackMaxText+1)))
			return err
		}, "msg_too_long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(s.Rejected())
			err := tt.call()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if got := slackCode(t, err); got != tt.want {
				t.Fatalf("error %q, want %q", got, tt.want)
			}
			rej := s.Rejected()
			if len(rej) != before+1 || rej[before].Reason != tt.want || rej[before].Status != 200 {
				t.Fatalf("rejections %+v", rej[before:])
			}
		})
	}
	if m := s.Messages()[0]; m.Text != "root" || m.Updates != 0 {
		t.Fatalf("a rejected update changed the message: %+v", m)
	}
}

// TestSlackWireFormats checks what slack-go does not send: JSON bodies with
// a Bearer token, the token inside JSON, bad bodies, unknown methods.
func TestSlackWireFormats(t *testing.T) {
	s, _ := newSlack(t, "#alerts")
	post := func(method, ctype, auth, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, s.APIURL+method, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	const jsonCT = "application/json; charset=utf-8"
	tests := []struct {
		name, method, ctype, auth, body string
		status                          int
		want                            string
	}{
		{"JSON with Bearer", "chat.postMessage", jsonCT, botToken,
			`{"channel":"#alerts","text":"hi","blocks":[{"type":"divider"}]}`, 200, `"ok":true`},
		{"JSON token in body", "chat.postMessage", jsonCT, "", `{"token":"` + botToken + `","channel":"#alerts","text":"hi"}`, 200, `"error":"not_authed"`},
		{"form with Bearer", "chat.postMessage", "application/x-www-form-urlencoded", botToken, "channel=alerts&text=hi", 200, `"ok":true`},
		{"blocks not JSON", "chat.postMessage", "application/x-www-form-urlencoded", botToken, "channel=alerts&blocks=%5B", 200, `"error":"invalid_blocks_format"`},
		{"block without type", "chat.postMessage", jsonCT, botToken, `{"channel":"#alerts","blocks":[{}]}`, 200, `"error":"invalid_blocks"`},
		{"invalid JSON", "chat.postMessage", jsonCT, botToken, `{"channel":`, 200, `"error":"invalid_json"`},
		{"JSON not an object", "chat.postMessage", jsonCT, botToken, `[1]`, 200, `"error":"json_not_object"`},
		{"no content type", "chat.postMessage", "", botToken, `channel=alerts`, 200, `"error":"missing_post_type"`},
		{"XML", "chat.postMessage", "application/xml", botToken, `<x/>`, 200, `"error":"invalid_post_type"`},
		{"bad charset", "chat.postMessage", "application/json; charset=koi8-r", botToken, `{}`, 200, `"error":"invalid_charset"`},
		{"unknown method", "chat.delete", "application/x-www-form-urlencoded", botToken, "channel=alerts", 404, `"error":"unknown_method"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := post(tt.method, tt.ctype, tt.auth, tt.body)
			if status != tt.status || !strings.Contains(body, tt.want) {
				t.Fatalf("%d %s, want %d with %s", status, body, tt.status, tt.want)
			}
		})
	}
	_, body := post("chat.postMessage", jsonCT, botToken, `{"channel":"#alerts","blocks":[`+strings.Repeat(`{"type":"divider"},`, 50)+`{"type":"divider"}]}`)
	if !strings.Contains(body, `"[ERROR] no more than 50 items allowed [json-pointer:/blocks]"`) {
		t.Fatalf("51 blocks: %s", body)
	}
}

func TestSlackWebhook(t *testing.T) {
	s, _ := newSlack(t, "#alerts")
	ctx := ctxT(t)
	err := slack.PostWebhookContext(ctx, s.WebhookURL, &slack.WebhookMessage{
		Text: "checkout failing", Channel: "#elsewhere",
		Blocks: &slack.Blocks{BlockSet: []slack.Block{slack.NewDividerBlock()}},
	})
	if err != nil {
		t.Fatal(err)
	}
	msgs := s.Messages()
	if len(msgs) != 1 || msgs[0].Via != "webhook" || msgs[0].Channel != s.ChannelID("#alerts") || msgs[0].Text != "checkout failing" || len(msgs[0].Blocks) != 1 {
		t.Fatalf("messages = %+v", msgs)
	}

	// slack-go reads only the status of a webhook error: the code is in the
	// body, which Rejected keeps.
	statusOf := func(t *testing.T, err error) int {
		t.Helper()
		var e slack.StatusCodeError
		if !errors.As(err, &e) {
			t.Fatalf("err = %T %v, want slack.StatusCodeError", err, err)
		}
		return e.Code
	}
	if got := statusOf(t, slack.PostWebhookContext(ctx, s.WebhookURL, &slack.WebhookMessage{})); got != 400 {
		t.Fatalf("empty message: %d", got)
	}
	if r := s.Rejected(); r[len(r)-1].Reason != "no_text" {
		t.Fatalf("rejected %+v", r)
	}
	if got := statusOf(t, slack.PostWebhookContext(ctx, s.APIURL[:len(s.APIURL)-len("/api/")]+"/services/T000/B000/WRONG", &slack.WebhookMessage{Text: "x"})); got != 404 {
		t.Fatalf("wrong webhook: %d", got)
	}
	if r := s.Rejected(); r[len(r)-1].Reason != "no_service" {
		t.Fatalf("rejected %+v", r)
	}

	raw := func(ctype, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, s.WebhookURL, strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tt := range []struct {
		ctype, body string
		status      int
		want        string
	}{
		{"application/json", `{"text":`, 400, "invalid_payload"},
		{"application/json", `{}`, 400, "no_text"},
		{"application/json", `{"text":"` + strings.Repeat("x", SlackMaxText+1) + `"}`, 400, "msg_too_long"},
		{"application/json", `{"blocks":[` + strings.Repeat(`{"type":"divider"},`, 50) + `{"type":"divider"}]}`, 400, "invalid_blocks"},
		{"application/x-www-form-urlencoded", "payload=" + url.QueryEscape(`{"text":"legacy form"}`), 200, "ok"},
		{"application/x-www-form-urlencoded", "text=no+payload", 400, "invalid_payload"},
	} {
		if status, body := raw(tt.ctype, tt.body); status != tt.status || body != tt.want {
			t.Errorf("%s %.40s: %d %q, want %d %q", tt.ctype, tt.body, status, body, tt.status, tt.want)
		}
	}

	// A webhook may thread on a ts it knows.
	root := s.Messages()[0].TS
	if err := slack.PostWebhookContext(ctx, s.WebhookURL, &slack.WebhookMessage{Text: "resolved", ThreadTimestamp: root}); err != nil {
		t.Fatal(err)
	}
	if th := s.Thread(root); len(th) != 1 || th[0].Text != "resolved" {
		t.Fatalf("thread = %+v", th)
	}
}

// TestSlackFaults checks what slack-go surfaces for each fault, on the Web
// API and the webhook.
func TestSlackFaults(t *testing.T) {
	s, c := newSlack(t)
	ctx := ctxT(t)
	post := func() error {
		_, _, err := c.PostMessageContext(ctx, "#alerts", slack.MsgOptionText("x", false))
		return err
	}
	hook := func() error {
		return slack.PostWebhookContext(ctx, s.WebhookURL, &slack.WebhookMessage{Text: "x"})
	}
	for _, call := range []struct {
		name string
		do   func() error
	}{{"api", post}, {"webhook", hook}} {
		t.Run(call.name, func(t *testing.T) {
			s.FailNext(1, 429, 2500*time.Millisecond)
			var rl *slack.RateLimitedError
			if err := call.do(); !errors.As(err, &rl) || rl.RetryAfter != 3*time.Second || !rl.Retryable() {
				t.Fatalf("err = %T %v, want *slack.RateLimitedError{3s}", err, err)
			}
			// Without Retry-After slack-go sees a plain status error.
			s.FailNext(1, 429, 0)
			var sc slack.StatusCodeError
			if err := call.do(); !errors.As(err, &sc) || sc.Code != 429 || !sc.Retryable() {
				t.Fatalf("err = %T %v, want StatusCodeError 429", err, err)
			}
			s.FailFor(503, time.Hour)
			if err := call.do(); !errors.As(err, &sc) || sc.Code != 503 || !sc.Retryable() {
				t.Fatalf("err = %T %v, want StatusCodeError 503", err, err)
			}
			s.Heal()
			s.ResetNext(1)
			err := call.do()
			var ue *url.Error
			if !errors.As(err, &ue) {
				t.Fatalf("err = %T %v, want a *url.Error transport error", err, err)
			}
			if err := call.do(); err != nil {
				t.Fatalf("after faults: %v", err)
			}
		})
	}

	s.SetLatency(5 * time.Second)
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := c.PostMessageContext(short, "#alerts", slack.MsgOptionText("x", false))
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 3*time.Second {
		t.Fatalf("err = %v after %v", err, time.Since(start))
	}
	s.Heal()

	s.SetRateLimit(1, time.Minute)
	if err := post(); err != nil {
		t.Fatal(err)
	}
	var rl *slack.RateLimitedError
	if err := post(); !errors.As(err, &rl) || rl.RetryAfter <= 0 {
		t.Fatalf("err = %v, want RateLimitedError", err)
	}
	if _, _, err := c.PostMessageContext(ctx, "#other", slack.MsgOptionText("x", false)); err != nil {
		t.Fatalf("the limit is per channel: %v", err)
	}
	if r := s.Rejected(); r[len(r)-1].Status != 429 {
		t.Fatalf("rejected %+v", r[len(r)-1])
	}
	if s.Requests() < 12 {
		t.Fatalf("Requests() = %d", s.Requests())
	}
}

func TestSlackWaitMessages(t *testing.T) {
	s, c := newSlack(t)
	ctx := ctxT(t)
	go func() {
		time.Sleep(20 * time.Millisecond)
		_, ts, err := c.PostMessageContext(ctx, "#alerts", slack.MsgOptionText("firing", false))
		if err == nil {
			_, _, _, _ = c.UpdateMessageContext(ctx, SlackChannelID("#alerts"), ts, slack.MsgOptionText("resolved", false))
		}
	}()
	if err := s.WaitMessages(ctx, 1); err != nil {
		t.Fatal(err)
	}
	err := s.WaitUntil(ctx, func() bool {
		m := s.Messages()
		return len(m) == 1 && m[0].Updates == 1
	})
	if err != nil || s.Messages()[0].Text != "resolved" {
		t.Fatalf("err = %v, messages %+v", err, s.Messages())
	}
	short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	if err := s.WaitMessages(short, 2); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "1 of 2") {
		t.Fatalf("err = %v", err)
	}
}

func TestSlackAnyToken(t *testing.T) {
	s := NewSlack("")
	defer s.Close()
	c := slack.New("xoxb-anything", slack.OptionAPIURL(s.APIURL))
	if _, _, err := c.PostMessageContext(ctxT(t), "#anything", slack.MsgOptionText("x", false)); err != nil {
		t.Fatal(err)
	}
	c = slack.New("", slack.OptionAPIURL(s.APIURL))
	if _, _, err := c.PostMessageContext(ctxT(t), "#anything", slack.MsgOptionText("x", false)); slackCode(t, err) != "not_authed" {
		t.Fatalf("err = %v", err)
	}
}
