package fakes

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits of Slack's chat methods and Block Kit, from Slack's documentation.
const (
	SlackMaxText        = 40000 // chat.postMessage: text
	SlackMaxBlocks      = 50    // blocks in one message
	SlackMaxAttachments = 100   // too_many_attachments
	SlackMaxSectionText = 3000  // section block text
	SlackMaxHeaderText  = 150   // header block text
	SlackMaxFields      = 10    // section block fields
	SlackMaxFieldText   = 2000  // one section field
	slackMaxBody        = 2 << 20
)

// The identity auth.test reports; the webhook path carries the same team and
// bot ids, as a real webhook URL does.
const (
	SlackTeamID = "T000"
	SlackBotID  = "B000"
	SlackUserID = "U000"
	slackHook   = "/services/" + SlackTeamID + "/" + SlackBotID + "/XXXX"
)

// Slack is a fake Slack Web API (chat.postMessage, chat.update, auth.test)
// and incoming webhook.
//
// Web API errors are HTTP 200 with {"ok":false,"error":"<code>"}, as Slack
// answers them; rate limits are HTTP 429 with Retry-After. Webhook errors are
// plain-text codes with 4xx statuses; success is 200 "ok".
type Slack struct {
	// APIURL is "http://127.0.0.1:port/api/": what slack.OptionAPIURL takes
	// (the trailing slash matters).
	APIURL string
	// WebhookURL is "http://127.0.0.1:port/services/T000/B000/XXXX". Its
	// messages go to the first channel given to NewSlack (or #general).
	WebhookURL string

	b           base
	token       string          // accepted bot token; "" accepts any non-empty one
	channels    map[string]bool // known channel ids; empty: any
	hookChannel string

	messages []*SlackMessage
	byTS     map[string]*SlackMessage
	rejected []Rejection
	lastTS   int64 // microseconds of the latest ts, so ts strictly increase
}

// SlackMessage is a message as the fake holds it, with its latest update
// applied.
type SlackMessage struct {
	Channel     string // channel id, even when posted by #name
	TS          string
	ThreadTS    string // parent ts for a thread reply, "" otherwise
	Text        string
	Blocks      []map[string]any
	Attachments []map[string]any
	Via         string // "api" | "webhook"
	Posted      time.Time
	Updates     int    // chat.update calls applied
	UpdatedText string // the text after the latest update ("" if never updated)
}

var (
	slackIDRe    = regexp.MustCompile(`^[CGD][A-Z0-9]{8,}$`)
	slackTSRe    = regexp.MustCompile(`^[1-9][0-9]{0,11}\.[0-9]{6}$`)
	channelB32   = base32.StdEncoding.WithPadding(base32.NoPadding)
	errNoPayload = errors.New("form has no payload field")
)

// SlackChannelID is the id the fake gives a channel name ("#alerts" or
// "alerts"): stable across runs, shaped like Slack's ids. An id is returned
// unchanged.
func SlackChannelID(channel string) string {
	if slackIDRe.MatchString(channel) {
		return channel
	}
	name := strings.TrimPrefix(channel, "#")
	sum := sha256.Sum256([]byte(name))
	return "C" + channelB32.EncodeToString(sum[:])[:10]
}

// NewSlack starts a fake accepting the bot token token ("" accepts any
// non-empty token) and posting to the given channels, ids (C0123ABCDE) or
// names (#alerts); with none every channel exists.
func NewSlack(token string, channels ...string) *Slack {
	s := &Slack{token: token, channels: map[string]bool{}, byTS: map[string]*SlackMessage{}}
	for _, c := range channels {
		s.channels[SlackChannelID(c)] = true
	}
	s.hookChannel = SlackChannelID("#general")
	if len(channels) > 0 {
		s.hookChannel = SlackChannelID(channels[0])
	}
	s.b.faultBody = slackFaultBody
	s.b.start(s.handle)
	s.APIURL = s.b.url + "/api/"
	s.WebhookURL = s.b.url + slackHook
	return s
}

// Close stops the server and waits for its handlers; it is safe to call twice.
func (s *Slack) Close() { s.b.close() }

// ChannelID is SlackChannelID: the id this fake answers for a channel name.
func (s *Slack) ChannelID(channel string) string { return SlackChannelID(channel) }

// Messages returns every message posted (API and webhook), in order, with
// their latest update applied.
func (s *Slack) Messages() []SlackMessage {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	out := make([]SlackMessage, len(s.messages))
	for i, m := range s.messages {
		out[i] = m.clone()
	}
	return out
}

// Thread returns the replies to the message ts, in order.
func (s *Slack) Thread(ts string) []SlackMessage {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	var out []SlackMessage
	for _, m := range s.messages {
		if m.ThreadTS == ts {
			out = append(out, m.clone())
		}
	}
	return out
}

// Rejected returns the requests refused under the API's rules, in order.
func (s *Slack) Rejected() []Rejection {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	return append([]Rejection(nil), s.rejected...)
}

// FailFor answers every request (API and webhook) with status for d (d <= 0
// clears it). A 429 carries Retry-After: the seconds left of the outage.
func (s *Slack) FailFor(status int, d time.Duration) { s.b.failFor(status, d) }

// FailNext answers the next n requests with status; a 429 carries
// Retry-After (whole seconds, rounded up) when retryAfter > 0, which is what
// makes slack-go return *slack.RateLimitedError.
func (s *Slack) FailNext(n, status int, retryAfter time.Duration) {
	s.b.failNext(n, status, retryAfter)
}

// SetLatency delays every response by d; a request whose context ends first
// gets no response.
func (s *Slack) SetLatency(d time.Duration) { s.b.setLatency(d) }

// ResetNext closes the connections of the next n requests with a TCP reset
// instead of answering.
func (s *Slack) ResetNext(n int) { s.b.resetNext(n) }

// Heal clears every fault: FailFor, FailNext, ResetNext and SetLatency.
func (s *Slack) Heal() { s.b.heal() }

// SetRateLimit answers 429 with Retry-After once a channel has received n
// posts within window (Slack allows about one message a second per channel,
// with short bursts); n <= 0 turns it off, the default.
func (s *Slack) SetRateLimit(n int, window time.Duration) { s.b.setRateLimit(n, window) }

// Requests counts every request seen, faulted ones included.
func (s *Slack) Requests() int { return s.b.requestCount() }

// WaitMessages blocks until at least n messages were posted, ctx ends or the
// fake closes.
func (s *Slack) WaitMessages(ctx context.Context, n int) error {
	err := s.b.waitUntil(ctx, func() bool { return len(s.Messages()) >= n })
	if err != nil {
		return fmt.Errorf("fakes: Slack has %d of %d messages: %w", len(s.Messages()), n, err)
	}
	return nil
}

// WaitUntil blocks until cond holds, ctx ends or the fake closes; cond is
// checked again after every request. It may call the fake's accessors.
func (s *Slack) WaitUntil(ctx context.Context, cond func() bool) error {
	return s.b.waitUntil(ctx, cond)
}

// slackFaultBody answers injected faults the way Slack's edge does: the Web
// API's ratelimited body on 429 (slack-go reads only the status and
// Retry-After), plain text otherwise.
func slackFaultBody(w http.ResponseWriter, r *http.Request, status int) {
	if status == http.StatusTooManyRequests && strings.HasPrefix(r.URL.Path, "/api/") {
		writeSlackJSON(w, status, map[string]any{"ok": false, "error": "ratelimited"})
		return
	}
	http.Error(w, http.StatusText(status), status)
}

func writeSlackJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Slack) handle(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/api/"):
		s.handleAPI(w, r, strings.TrimPrefix(r.URL.Path, "/api/"))
	case strings.HasPrefix(r.URL.Path, "/services/"):
		s.handleWebhook(w, r)
	default:
		s.record(http.StatusNotFound, nil, "404 page not found")
		http.NotFound(w, r)
	}
}

func (s *Slack) record(status int, body []byte, reason string) {
	s.b.mu.Lock()
	s.rejected = append(s.rejected, Rejection{Status: status, Body: body, Reason: reason})
	s.b.notifyLocked()
	s.b.mu.Unlock()
}

// apiError answers a Web API error: HTTP 200, ok false, as Slack does.
func (s *Slack) apiError(w http.ResponseWriter, body []byte, code string, messages ...string) {
	s.record(http.StatusOK, body, code)
	resp := map[string]any{"ok": false, "error": code}
	if len(messages) > 0 {
		resp["response_metadata"] = map[string]any{"messages": messages}
	}
	writeSlackJSON(w, http.StatusOK, resp)
}

// slackArgs are a Web API call's arguments, whatever the encoding.
type slackArgs struct {
	token                       string
	channel, text, ts, threadTS string
	hasText                     bool
	blocks, attachments         *string // raw JSON; nil when absent
}

func (s *Slack) handleAPI(w http.ResponseWriter, r *http.Request, method string) {
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET, POST")
		s.record(http.StatusMethodNotAllowed, nil, "method_not_allowed")
		writeSlackJSON(w, http.StatusMethodNotAllowed, map[string]any{"ok": false, "error": "method_not_allowed"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, slackMaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.record(http.StatusRequestEntityTooLarge, body, "request_too_large")
			writeSlackJSON(w, http.StatusRequestEntityTooLarge, map[string]any{"ok": false, "error": "request_too_large"})
		}
		return
	}
	switch method {
	case "chat.postMessage", "chat.update", "auth.test":
	default:
		s.record(http.StatusNotFound, body, "unknown_method")
		writeSlackJSON(w, http.StatusNotFound, map[string]any{"ok": false, "error": "unknown_method", "req_method": method})
		return
	}
	args, code := parseSlackArgs(r, body)
	if code != "" {
		s.apiError(w, body, code)
		return
	}
	switch {
	case args.token == "":
		s.apiError(w, body, "not_authed")
		return
	case s.token != "" && args.token != s.token:
		s.apiError(w, body, "invalid_auth")
		return
	}
	switch method {
	case "auth.test":
		writeSlackJSON(w, http.StatusOK, map[string]any{
			"ok": true, "url": "https://fake-prober.slack.com/", "team": "Prober Fake",
			"user": "prober", "team_id": SlackTeamID, "user_id": SlackUserID, "bot_id": SlackBotID,
			"is_enterprise_install": false,
		})
	case "chat.postMessage":
		s.postMessage(w, body, args)
	case "chat.update":
		s.update(w, body, args)
	}
}

// parseSlackArgs reads the arguments as Slack does: query string, then a
// form-encoded, multipart or JSON body. The token comes from "Authorization:
// Bearer" or, for form bodies only, the token argument: Slack ignores a
// token inside a JSON body.
func parseSlackArgs(r *http.Request, body []byte) (slackArgs, string) {
	vals := url.Values{}
	for k, v := range r.URL.Query() {
		if k != "token" { // tokens in query strings are refused for new apps
			vals[k] = v
		}
	}
	var args slackArgs
	isJSON := false
	if len(body) > 0 {
		ct := r.Header.Get("Content-Type")
		if ct == "" {
			return args, "missing_post_type"
		}
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil {
			return args, "invalid_post_type"
		}
		if cs := strings.ToLower(params["charset"]); cs != "" && cs != "utf-8" && cs != "iso-8859-1" {
			return args, "invalid_charset"
		}
		switch mt {
		case "application/x-www-form-urlencoded", "text/plain":
			form, err := url.ParseQuery(string(body))
			if err != nil {
				return args, "invalid_form_data"
			}
			for k, v := range form {
				vals[k] = v
			}
		case "multipart/form-data":
			mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
			form, err := mr.ReadForm(slackMaxBody)
			if err != nil {
				return args, "invalid_form_data"
			}
			for k, v := range form.Value {
				vals[k] = v
			}
			_ = form.RemoveAll()
		case "application/json":
			isJSON = true
			obj, err := decodeObject(body)
			if err != nil {
				if json.Valid(body) {
					return args, "json_not_object"
				}
				return args, "invalid_json"
			}
			if code := jsonArgs(obj, &args); code != "" {
				return args, code
			}
		default:
			return args, "invalid_post_type"
		}
	}
	if !isJSON {
		args.token = vals.Get("token")
		args.channel, args.ts, args.threadTS = vals.Get("channel"), vals.Get("ts"), vals.Get("thread_ts")
		args.text, args.hasText = vals.Get("text"), vals.Has("text")
		if vals.Has("blocks") {
			b := vals.Get("blocks")
			args.blocks = &b
		}
		if vals.Has("attachments") {
			a := vals.Get("attachments")
			args.attachments = &a
		}
	}
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		args.token = strings.TrimSpace(strings.TrimPrefix(h, "Bearer "))
	}
	return args, ""
}

// jsonArgs reads JSON-body arguments; blocks and attachments may be arrays or
// JSON strings, as Slack accepts both.
func jsonArgs(obj map[string]any, args *slackArgs) string {
	get := func(key string) (string, bool) {
		v, ok := obj[key]
		if !ok || v == nil {
			return "", false
		}
		switch x := v.(type) {
		case string:
			return x, true
		case json.Number:
			return x.String(), true
		default:
			return "", false
		}
	}
	args.channel, _ = get("channel")
	args.ts, _ = get("ts")
	args.threadTS, _ = get("thread_ts")
	args.text, args.hasText = get("text")
	for key, dst := range map[string]**string{"blocks": &args.blocks, "attachments": &args.attachments} {
		v, ok := obj[key]
		if !ok || v == nil {
			continue
		}
		var raw string
		if str, isStr := v.(string); isStr {
			raw = str
		} else {
			b, err := json.Marshal(v)
			if err != nil {
				return "invalid_arguments"
			}
			raw = string(b)
		}
		*dst = &raw
	}
	return ""
}

// content is a message body after validation.
type content struct {
	text                string
	blocks, attachments []map[string]any
}

// checkContent applies the limits of chat.postMessage and Block Kit; it
// returns the error code and response_metadata messages, as Slack does.
func checkContent(text string, blocks, attachments *string) (content, string, []string) {
	c := content{text: text}
	if utf8.RuneCountInString(text) > SlackMaxText {
		return c, "msg_too_long", nil
	}
	if blocks != nil {
		var bs []map[string]any
		if err := json.Unmarshal([]byte(*blocks), &bs); err != nil {
			return c, "invalid_blocks_format", nil
		}
		if msgs := checkBlocks(bs); len(msgs) > 0 {
			return c, "invalid_blocks", msgs
		}
		c.blocks = bs
	}
	if attachments != nil {
		var as []map[string]any
		if err := json.Unmarshal([]byte(*attachments), &as); err != nil {
			return c, "invalid_attachments", nil
		}
		if len(as) > SlackMaxAttachments {
			return c, "too_many_attachments", nil
		}
		c.attachments = as
	}
	if text == "" && len(c.blocks) == 0 && len(c.attachments) == 0 {
		return c, "no_text", nil
	}
	return c, "", nil
}

// checkBlocks enforces the Block Kit limits notifiers trip on, with Slack's
// message format ("[ERROR] ... [json-pointer:/blocks/0/text/text]").
func checkBlocks(bs []map[string]any) []string {
	var msgs []string
	bad := func(ptr, format string, a ...any) {
		msgs = append(msgs, fmt.Sprintf("[ERROR] "+format+" [json-pointer:%s]", append(a, ptr)...))
	}
	if len(bs) > SlackMaxBlocks {
		bad("/blocks", "no more than %d items allowed", SlackMaxBlocks)
		return msgs
	}
	textLen := func(v any) (int, bool) {
		obj, ok := v.(map[string]any)
		if !ok {
			return 0, false
		}
		t, ok := obj["text"].(string)
		return utf8.RuneCountInString(t), ok
	}
	for i, b := range bs {
		typ, _ := b["type"].(string)
		ptr := fmt.Sprintf("/blocks/%d", i)
		switch typ {
		case "":
			bad(ptr+"/type", "missing required field: type")
		case "section":
			if n, ok := textLen(b["text"]); ok && n > SlackMaxSectionText {
				bad(ptr+"/text/text", "must be less than %d characters", SlackMaxSectionText+1)
			}
			fields, _ := b["fields"].([]any)
			if len(fields) > SlackMaxFields {
				bad(ptr+"/fields", "no more than %d items allowed", SlackMaxFields)
			}
			for j, f := range fields {
				if n, ok := textLen(f); ok && n > SlackMaxFieldText {
					bad(fmt.Sprintf("%s/fields/%d/text", ptr, j), "must be less than %d characters", SlackMaxFieldText+1)
				}
			}
			if _, hasText := b["text"]; !hasText && len(fields) == 0 {
				bad(ptr, "must provide either text or fields")
			}
		case "header":
			if n, ok := textLen(b["text"]); !ok {
				bad(ptr+"/text", "missing required field: text")
			} else if n > SlackMaxHeaderText {
				bad(ptr+"/text/text", "must be less than %d characters", SlackMaxHeaderText+1)
			}
		}
	}
	return msgs
}

// resolveChannel maps a channel argument to a known channel id.
func (s *Slack) resolveChannel(ch string) (string, bool) {
	ch = strings.TrimSpace(ch)
	if ch == "" {
		return "", false
	}
	id := SlackChannelID(ch)
	if len(s.channels) > 0 && !s.channels[id] {
		return "", false
	}
	return id, true
}

// nextTSLocked makes a ts like Slack's ("1700000000.000100"): wall-clock
// microseconds, strictly increasing so every ts is unique.
func (s *Slack) nextTSLocked(now time.Time) string {
	us := max(now.UnixMicro(), s.lastTS+1)
	s.lastTS = us
	return fmt.Sprintf("%d.%06d", us/1e6, us%1e6)
}

func (s *Slack) postMessage(w http.ResponseWriter, body []byte, a slackArgs) {
	ch, ok := s.resolveChannel(a.channel)
	if !ok {
		s.apiError(w, body, "channel_not_found")
		return
	}
	c, code, msgs := checkContent(a.text, a.blocks, a.attachments)
	if code != "" {
		s.apiError(w, body, code, msgs...)
		return
	}
	if a.threadTS != "" && !slackTSRe.MatchString(a.threadTS) {
		s.apiError(w, body, "invalid_thread_ts", fmt.Sprintf("[ERROR] %s is not a valid thread_ts", a.threadTS))
		return
	}

	now := time.Now()
	s.b.mu.Lock()
	threadTS := ""
	if a.threadTS != "" {
		parent := s.byTS[a.threadTS]
		if parent == nil || parent.Channel != ch {
			s.b.mu.Unlock()
			// Stricter than Slack, which answers ok and posts an orphan reply
			// nobody sees: a notifier must thread on a ts it was given.
			s.apiError(w, body, "thread_not_found")
			return
		}
		threadTS = parent.TS
		if parent.ThreadTS != "" {
			threadTS = parent.ThreadTS // a reply to a reply joins the parent's thread
		}
	}
	if ok, wait := s.b.allowLocked(ch, now); !ok {
		s.rateLimitedLocked(w, body, wait)
		return
	}
	m := &SlackMessage{
		Channel: ch, TS: s.nextTSLocked(now), ThreadTS: threadTS, Text: c.text,
		Blocks: c.blocks, Attachments: c.attachments, Via: "api", Posted: now,
	}
	s.storeLocked(m)
	resp := map[string]any{"ok": true, "channel": ch, "ts": m.TS, "message": messageJSON(m)}
	s.b.mu.Unlock()
	writeSlackJSON(w, http.StatusOK, resp)
}

func (s *Slack) update(w http.ResponseWriter, body []byte, a slackArgs) {
	// chat.update wants the id chat.postMessage returned, not a #name.
	if !slackIDRe.MatchString(a.channel) {
		s.apiError(w, body, "channel_not_found")
		return
	}
	ch, ok := s.resolveChannel(a.channel)
	if !ok {
		s.apiError(w, body, "channel_not_found")
		return
	}
	c, code, msgs := checkContent(a.text, a.blocks, a.attachments)
	if code != "" {
		s.apiError(w, body, code, msgs...)
		return
	}
	s.b.mu.Lock()
	m := s.byTS[a.ts]
	if m == nil || m.Channel != ch {
		s.b.mu.Unlock()
		s.apiError(w, body, "message_not_found")
		return
	}
	// Text is replaced when given; blocks and attachments are kept unless
	// given (an empty array clears them), as chat.update documents.
	if a.hasText {
		m.Text = c.text
	}
	if a.blocks != nil {
		m.Blocks = c.blocks
	}
	if a.attachments != nil {
		m.Attachments = c.attachments
	}
	m.Updates++
	m.UpdatedText = m.Text
	resp := map[string]any{"ok": true, "channel": ch, "ts": m.TS, "text": m.Text, "message": messageJSON(m)}
	s.b.notifyLocked()
	s.b.mu.Unlock()
	writeSlackJSON(w, http.StatusOK, resp)
}

func (s *Slack) rateLimitedLocked(w http.ResponseWriter, body []byte, wait time.Duration) {
	s.rejected = append(s.rejected, Rejection{Status: http.StatusTooManyRequests, Body: body, Reason: "ratelimited"})
	s.b.notifyLocked()
	s.b.mu.Unlock()
	w.Header().Set("Retry-After", retryAfterSeconds(wait))
	writeSlackJSON(w, http.StatusTooManyRequests, map[string]any{"ok": false, "error": "ratelimited"})
}

func (s *Slack) storeLocked(m *SlackMessage) {
	s.messages = append(s.messages, m)
	s.byTS[m.TS] = m
	s.b.notifyLocked()
}

// messageJSON is the message object chat.postMessage and chat.update return.
func messageJSON(m *SlackMessage) map[string]any {
	out := map[string]any{
		"type": "message", "subtype": "bot_message", "text": m.Text, "ts": m.TS,
		"bot_id": SlackBotID, "user": SlackUserID,
	}
	if m.ThreadTS != "" {
		out["thread_ts"] = m.ThreadTS
	}
	if m.Blocks != nil {
		out["blocks"] = m.Blocks
	}
	if m.Attachments != nil {
		out["attachments"] = m.Attachments
	}
	return out
}

// webhookError answers an incoming-webhook error: a plain-text code and a
// 4xx status, as documented for incoming webhooks.
func (s *Slack) webhookError(w http.ResponseWriter, status int, body []byte, code string) {
	s.record(status, body, code)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, code)
}

func (s *Slack) handleWebhook(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != slackHook {
		s.webhookError(w, http.StatusNotFound, nil, "no_service")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.webhookError(w, http.StatusMethodNotAllowed, nil, "invalid_method")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, slackMaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.webhookError(w, http.StatusRequestEntityTooLarge, body, "request_too_large")
		}
		return
	}
	obj, err := webhookPayload(r, body)
	if err != nil {
		s.webhookError(w, http.StatusBadRequest, body, "invalid_payload")
		return
	}
	var a slackArgs
	if code := jsonArgs(obj, &a); code != "" {
		s.webhookError(w, http.StatusBadRequest, body, "invalid_payload")
		return
	}
	c, code, _ := checkContent(a.text, a.blocks, a.attachments)
	if code != "" {
		s.webhookError(w, http.StatusBadRequest, body, code)
		return
	}
	// The payload's "channel" is ignored: an app's webhook posts only to the
	// channel chosen when it was installed.
	now := time.Now()
	s.b.mu.Lock()
	if ok, wait := s.b.allowLocked(s.hookChannel, now); !ok {
		s.rejected = append(s.rejected, Rejection{Status: http.StatusTooManyRequests, Body: body, Reason: "rate_limited"})
		s.b.notifyLocked()
		s.b.mu.Unlock()
		w.Header().Set("Retry-After", retryAfterSeconds(wait))
		s.webhookPlain(w, http.StatusTooManyRequests, "rate_limited")
		return
	}
	threadTS := ""
	if parent := s.byTS[a.threadTS]; parent != nil && parent.Channel == s.hookChannel {
		threadTS = parent.TS // webhooks may thread; an unknown ts posts top-level
	}
	s.storeLocked(&SlackMessage{
		Channel: s.hookChannel, TS: s.nextTSLocked(now), ThreadTS: threadTS, Text: c.text,
		Blocks: c.blocks, Attachments: c.attachments, Via: "webhook", Posted: now,
	})
	s.b.mu.Unlock()
	s.webhookPlain(w, http.StatusOK, "ok")
}

func (s *Slack) webhookPlain(w http.ResponseWriter, status int, text string) {
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, text)
}

// webhookPayload reads a webhook body: JSON, or a form with a payload field
// holding JSON (the legacy encoding Slack still accepts).
func webhookPayload(r *http.Request, body []byte) (map[string]any, error) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/x-www-form-urlencoded" {
		form, err := url.ParseQuery(string(body))
		if err != nil || !form.Has("payload") {
			return nil, errNoPayload
		}
		body = []byte(form.Get("payload"))
	}
	return decodeObject(body)
}

func (m *SlackMessage) clone() SlackMessage {
	c := *m
	c.Blocks = cloneMaps(m.Blocks)
	c.Attachments = cloneMaps(m.Attachments)
	return c
}
