// Package webhook is the generic webhook notifier: each notification is an
// HTTP POST of a JSON body to a URL, the page itself (alert.Page as JSON:
// kind trigger, reminder or resolve, dedup_key, summary, ...) or what a Go
// text/template from the config renders of it, optionally signed with
// HMAC-SHA256 over the body under a secret.
//
//	notifiers:
//	  hook:
//	    type: webhook
//	    url: https://hooks.example/prober
//	    secret: "{{secret:WEBHOOK_SECRET}}"     # optional: X-Prober-Signature: sha256=<hex>
//	    template: '{"text": {{json .Summary}}, "key": {{json .DedupKey}}, "kind": {{json .Kind}}}'  # optional
//
// The receiver deduplicates by dedup_key (the same for an incident's
// trigger, reminders and resolve, on every replica and restart). A 2xx is
// delivered; a 429 waits its Retry-After, a 408 or 5xx is retried, any
// other answer fails for good (alert.HTTPDeliveryError).
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/template"
	"time"

	"github.com/prober-dev/prober/internal/alert"
	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/secret"
)

// SignatureHeader carries the body's HMAC-SHA256 under the secret, as
// "sha256=" and lowercase hex (GitHub's X-Hub-Signature-256 convention).
const SignatureHeader = "X-Prober-Signature"

// Spec is a webhook notifier's block.
type Spec struct {
	URL      string
	Secret   string             // HMAC key, resolved; "" = unsigned
	Template *template.Template // nil: the page as JSON
}

// Plugin registers the webhook type (daemon/notifiers.go).
type Plugin struct{}

func (Plugin) Type() string   { return "webhook" }
func (Plugin) Keys() []string { return []string{"url", "secret", "template"} }

// Example is a valid block, built by the daemon's tests.
func (Plugin) Example() string {
	return `{type: webhook, url: "http://127.0.0.1:1/hook", secret: "{{secret:S}}", template: '{"key": {{json .DedupKey}}}'}`
}

// Decode reads the block; a template is parsed and tried on a sample page
// now, so that one rendering no JSON fails validate, not the first page.
func (Plugin) Decode(b *config.NotifierBlock) any {
	s := &Spec{}
	if !b.Has("url") {
		b.Errorf("", "webhook notifier %s needs a url", b.Name())
	}
	s.URL, _ = b.URL("url")
	if b.Has("secret") {
		s.Secret, _ = b.Secret("secret", "a signing secret")
	}
	if text, ok := b.Text("template", "a Go template of the JSON body"); ok {
		t, err := parse(text)
		if err == nil {
			_, err = render(t, samplePage())
		}
		if err != nil {
			b.Errorf("template", "%v", err) // "template: body:1:2: ..."
		} else {
			s.Template = t
		}
	}
	return s
}

// New builds the notifier of n (n.Spec is Decode's *Spec).
func (Plugin) New(n *config.Notifier, o alert.NotifierOptions) (alert.Notifier, error) {
	s, ok := n.Spec.(*Spec)
	if !ok || s.URL == "" {
		return nil, fmt.Errorf("webhook notifier %s: no url", n.Name)
	}
	sec := map[string]string{}
	if s.Secret != "" {
		sec["secret"] = s.Secret
	}
	return &notifier{name: n.Name, spec: s, hc: o.Client(n.Timeout), secrets: secret.NewSet(sec), now: time.Now}, nil
}

func parse(text string) (*template.Template, error) {
	return template.New("body").Option("missingkey=error").Funcs(template.FuncMap{
		// json quotes a value as JSON, so that text with quotes or
		// newlines keeps the body valid.
		"json": func(v any) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
	}).Parse(text)
}

// render executes t on p and checks that the result is JSON.
func render(t *template.Template, p *alert.Page) ([]byte, error) {
	var buf bytes.Buffer
	if err := t.Execute(&buf, p); err != nil {
		return nil, err
	}
	if !json.Valid(buf.Bytes()) {
		return nil, fmt.Errorf("template renders no valid JSON (quote strings with {{json .Summary}}): %.200s", buf.String())
	}
	return buf.Bytes(), nil
}

func samplePage() *alert.Page {
	return &alert.Page{Kind: alert.Trigger, DedupKey: "prober/sample", Rule: "sample", Severity: "critical",
		Summary: `checkout "failing"` + "\n", Source: "prober", Labels: map[string]string{"flow": "checkout"},
		Details: []alert.Field{{Name: "step", Value: "pay"}}, Links: []alert.Link{{Name: "logs", URL: "https://logs.test/"}}}
}

type notifier struct {
	name    string
	spec    *Spec
	hc      *http.Client
	secrets *secret.Set
	now     func() time.Time
}

func (n *notifier) Name() string              { return n.name }
func (n *notifier) Type() config.NotifierType { return "webhook" }

// Send posts p. There is no thread: the dedup key is the incident.
func (n *notifier) Send(ctx context.Context, p *alert.Page, thread string) (string, error) {
	var (
		body []byte
		err  error
	)
	if n.spec.Template != nil {
		body, err = render(n.spec.Template, p)
	} else {
		body, err = json.Marshal(p)
	}
	if err != nil {
		return thread, &alert.DeliveryError{Permanent: true, Msg: n.secrets.Redact("rendering the body: " + err.Error())}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.spec.URL, bytes.NewReader(body))
	if err != nil {
		return thread, &alert.DeliveryError{Permanent: true, Msg: n.secrets.Redact(err.Error())}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "prober")
	if n.spec.Secret != "" {
		req.Header.Set(SignatureHeader, Sign([]byte(n.spec.Secret), body))
	}
	resp, err := n.hc.Do(req)
	if err != nil {
		return thread, alert.TransportError("webhook unreachable", err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	msg := strings.TrimSpace(string(text))
	if len(msg) > 512 {
		msg = strings.ToValidUTF8(msg[:512], "") + "..."
	}
	if de := alert.HTTPDeliveryError(resp.StatusCode, resp.Header, n.secrets.Redact(msg), n.now()); de != nil {
		return thread, de
	}
	return "", nil
}

// Reach asks the URL with a GET, which sends nothing: any answer but a 5xx
// or 429 (a 405 from a POST-only endpoint too) means it is back.
func (n *notifier) Reach(ctx context.Context) error {
	return alert.ReachHTTP(ctx, n.hc, n.spec.URL)
}

// Sign is the value of SignatureHeader for body under key.
func Sign(key, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}
