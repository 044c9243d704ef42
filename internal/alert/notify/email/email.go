// Package email is the e-mail notifier: each trigger, reminder and
// resolve is a mail through an SMTP smarthost (net/smtp), over STARTTLS
// or implicit TLS, with AUTH PLAIN when a password is set.
//
//	notifiers:
//	  mail:
//	    type: email
//	    smarthost: smtp.example.com:587
//	    from: "prober <prober@example.com>"
//	    to: [oncall@example.com, "Payments <payments@example.com>"]
//	    username: prober@example.com          # optional: default the from address
//	    password: "{{secret:SMTP_PASSWORD}}"   # optional: AUTH PLAIN, only over TLS
//	    tls: starttls                          # default; implicit (port 465) or none
//	    html: true                             # optional: an HTML alternative
//
// Mail has no incident, only threads: the trigger's Message-ID is the
// incident's (kept as the thread), and its reminders, notes and resolve
// reply to it (In-Reply-To, References, "Re: " and the same subject), so
// that mail clients show the incident as one conversation. Every mail's
// Message-ID is derived from its notification, so a retry after a lost
// "250 OK" carries the same one and clients show it once.
package email

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prober-dev/prober/internal/alert"
	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/secret"
)

// Type is the notifier type's name in probes.yaml.
const Type = "email"

// TLS modes.
const (
	StartTLS = "starttls" // plain connection upgraded by STARTTLS, which must be offered
	Implicit = "implicit" // TLS from the first byte (SMTPS, port 465)
	NoTLS    = "none"     // clear text: a local relay only; no password
)

const subjectMax = 150 // characters of the subject's summary

// Spec is an e-mail notifier's block.
type Spec struct {
	Smarthost string // host:port
	From      *mail.Address
	To        []*mail.Address
	Username  string
	Password  string // resolved secret; "" = no AUTH
	TLS       string
	HTML      bool
}

// Plugin registers the email type (daemon/notifiers.go).
type Plugin struct{}

func (Plugin) Type() string { return Type }
func (Plugin) Keys() []string {
	return []string{"smarthost", "from", "to", "username", "password", "tls", "html"}
}

// Example is a valid block, built by the daemon's tests.
func (Plugin) Example() string {
	return `{type: email, smarthost: "127.0.0.1:1", from: "prober@example.com", to: [oncall@example.com], password: "{{secret:S}}"}`
}

// Decode reads the block.
func (Plugin) Decode(b *config.NotifierBlock) any {
	s := &Spec{TLS: StartTLS}
	for _, k := range []string{"smarthost", "from", "to"} {
		if !b.Has(k) {
			b.Errorf("", "email notifier %s needs %s", b.Name(), k)
		}
	}
	if hp, ok := b.String("smarthost", "host:port"); ok {
		if host, port, err := net.SplitHostPort(hp); err != nil || host == "" || !validPort(port) {
			b.Errorf("smarthost", "smarthost %q is not host:port (smtp.example.com:587)", hp)
		} else {
			s.Smarthost = hp
		}
	}
	if f, ok := b.String("from", "an address"); ok {
		a, err := mail.ParseAddress(f)
		if err != nil {
			b.Errorf("from", "from %q is not an address: %v", f, err)
		}
		s.From = a
	}
	var to []*mail.Address
	b.Strings("to", "an address", func(v string) error {
		a, err := mail.ParseAddress(v)
		if err != nil {
			return fmt.Errorf("%q is not an address: %v", v, err)
		}
		to = append(to, a)
		return nil
	})
	s.To = to
	if t, ok := b.String("tls", "starttls, implicit or none"); ok {
		if t != StartTLS && t != Implicit && t != NoTLS {
			b.Errorf("tls", "tls must be starttls, implicit or none, got %q", t)
		}
		s.TLS = t
	}
	if h, ok := b.String("html", "true or false"); ok {
		v, err := strconv.ParseBool(h)
		if err != nil {
			b.Errorf("html", "html must be true or false, got %q", h)
		}
		s.HTML = v
	}
	s.Username, _ = b.String("username", "a user name")
	if b.Has("password") {
		s.Password, _ = b.Secret("password", "an SMTP password")
		if s.TLS == NoTLS {
			b.Errorf("password", "a password needs tls: starttls or implicit (it would cross the network in the clear)")
		}
	} else if b.Has("username") {
		b.Errorf("username", "username without a password")
	}
	if s.Username == "" && s.From != nil {
		s.Username = s.From.Address
	}
	return s
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n > 0 && n < 65536
}

// CheckSecrets checks the resolved password (validate --secrets) without
// quoting it: AUTH PLAIN cannot carry a NUL, and a trailing newline is
// the secret source's, not the password's.
func (Plugin) CheckSecrets(n *config.Notifier) []string {
	s, _ := n.Spec.(*Spec)
	if s == nil || s.Password == "" {
		return nil
	}
	switch {
	case strings.TrimSpace(s.Password) != s.Password:
		return []string{"password has leading or trailing whitespace (a newline from the secret's source?)"}
	case strings.ContainsRune(s.Password, 0):
		return []string{"password holds a NUL byte, which AUTH PLAIN cannot carry"}
	}
	return nil
}

// New builds the notifier of n (n.Spec is Decode's *Spec).
func (Plugin) New(n *config.Notifier, o alert.NotifierOptions) (alert.Notifier, error) {
	s, _ := n.Spec.(*Spec)
	if s == nil || s.Smarthost == "" || s.From == nil || len(s.To) == 0 {
		return nil, fmt.Errorf("email notifier %s: needs smarthost, from and to", n.Name)
	}
	host, _, err := net.SplitHostPort(s.Smarthost)
	if err != nil {
		return nil, fmt.Errorf("email notifier %s: smarthost: %w", n.Name, err)
	}
	sec := map[string]string{}
	if s.Password != "" {
		sec["password"] = s.Password
		// What AUTH PLAIN sends: a server's error may echo it.
		sec["auth_plain"] = base64.StdEncoding.EncodeToString([]byte("\x00" + s.Username + "\x00" + s.Password))
	}
	timeout := cmp.Or(n.Timeout, 30*time.Second)
	return &notifier{name: n.Name, spec: s, host: host, timeout: timeout, log: o.Log(),
		secrets: secret.NewSet(sec), hello: helloName(), now: time.Now}, nil
}

// helloName is this host's name for EHLO, "localhost" when it has none a
// server would take.
func helloName() string {
	h, err := os.Hostname()
	if err != nil || h == "" || strings.ContainsAny(h, " \t\r\n") {
		return "localhost"
	}
	return h
}

type notifier struct {
	name    string
	spec    *Spec
	host    string // the smarthost's name: TLS verifies it
	timeout time.Duration
	log     *slog.Logger
	secrets *secret.Set
	hello   string
	now     func() time.Time
	// tlsConfig is the base TLS configuration (tests trust their own
	// certificate); nil: the system's roots.
	tlsConfig *tls.Config
}

func (n *notifier) Name() string              { return n.name }
func (n *notifier) Type() config.NotifierType { return Type }

// Send mails p. The thread is the incident's first Message-ID and
// subject ("<id>\n<subject>"): replies thread under it.
func (n *notifier) Send(ctx context.Context, p *alert.Page, thread string) (string, error) {
	rootID, rootSubject, _ := strings.Cut(thread, "\n")
	msg, id, subject := n.compose(p, rootID, rootSubject)
	if err := n.deliver(ctx, msg); err != nil {
		return thread, err
	}
	if rootID == "" {
		return id + "\n" + subject, nil // this mail starts the thread
	}
	return thread, nil
}

// deliver runs one SMTP transaction for msg.
func (n *notifier) deliver(ctx context.Context, msg []byte) error {
	ctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	c, err := n.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if n.spec.TLS == StartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return &alert.DeliveryError{Permanent: true, Msg: "the smarthost offers no STARTTLS (set tls: none to send in the clear to a local relay)"}
		}
		if err := c.StartTLS(n.tlsFor()); err != nil {
			return n.fail("starting TLS", err)
		}
	}
	if n.spec.Password != "" {
		ok, mechs := c.Extension("AUTH")
		if !ok || !slices.Contains(strings.Fields(strings.ToUpper(mechs)), "PLAIN") {
			return &alert.DeliveryError{Permanent: true, Msg: fmt.Sprintf("the smarthost offers no AUTH PLAIN (offers %q)", mechs)}
		}
		if err := c.Auth(smtp.PlainAuth("", n.spec.Username, n.spec.Password, n.host)); err != nil {
			return n.fail("authenticating as "+n.spec.Username, err)
		}
	}
	if err := c.Mail(n.spec.From.Address); err != nil {
		return n.fail("MAIL FROM", err)
	}
	// A recipient refused for good (5xx) is skipped and logged: resending
	// cannot fix it, and the others must get the page. A refusal for now
	// (4xx) retries the whole mail later, before anyone got it.
	var accepted int
	var refused []string
	for _, to := range n.spec.To {
		err := c.Rcpt(to.Address)
		var te *textproto.Error
		switch {
		case err == nil:
			accepted++
		case errors.As(err, &te) && te.Code >= 500:
			refused = append(refused, to.Address+": "+n.secrets.Redact(fmt.Sprintf("%d %s", te.Code, te.Msg)))
		default:
			_ = c.Reset()
			return n.fail("RCPT TO "+to.Address, err)
		}
	}
	if accepted == 0 {
		return &alert.DeliveryError{Permanent: true, Msg: "every recipient refused: " + strings.Join(refused, "; ")}
	}
	w, err := c.Data()
	if err != nil {
		return n.fail("DATA", err)
	}
	if _, err := w.Write(msg); err != nil {
		return n.fail("writing the message", err)
	}
	if err := w.Close(); err != nil { // the server's verdict on the message
		return n.fail("sending the message", err)
	}
	if len(refused) > 0 {
		n.log.Warn("mail_recipients_refused", "notifier", n.name, "refused", strings.Join(refused, "; "),
			"note", "the page went to the other recipients; fix the addresses")
	}
	_ = c.Quit() // delivered: a failed goodbye changes nothing
	return nil
}

// dial connects to the smarthost (TLS first for implicit) and reads its
// greeting and EHLO. The connection ends with ctx.
func (n *notifier) dial(ctx context.Context) (*smtp.Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", n.spec.Smarthost)
	if err != nil {
		return nil, n.fail("connecting to the smarthost", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	// A cancelled send ends the connection (and a finished one: the
	// caller's cancel, after Close, is harmless).
	context.AfterFunc(ctx, func() { conn.Close() })
	if n.spec.TLS == Implicit {
		tc := tls.Client(conn, n.tlsFor())
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, n.fail("starting TLS", err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, n.host)
	if err != nil {
		conn.Close()
		return nil, n.fail("reading the greeting", err)
	}
	if err := c.Hello(n.hello); err != nil {
		c.Close()
		return nil, n.fail("EHLO", err)
	}
	return c, nil
}

func (n *notifier) tlsFor() *tls.Config {
	c := &tls.Config{}
	if n.tlsConfig != nil {
		c = n.tlsConfig.Clone()
	}
	c.ServerName = n.host
	c.MinVersion = tls.VersionTLS12
	return c
}

// fail classifies an SMTP error: a 5xx reply is permanent (a refused
// password, sender or message), a 4xx or no answer is retried. The text
// says what was being done and never holds the password.
func (n *notifier) fail(what string, err error) *alert.DeliveryError {
	var te *textproto.Error
	if errors.As(err, &te) {
		return &alert.DeliveryError{Permanent: te.Code >= 500, Msg: n.secrets.Redact(fmt.Sprintf("%s: %d %s", what, te.Code, te.Msg))}
	}
	return &alert.DeliveryError{Msg: n.secrets.Redact(what + ": " + alert.TransportText(err))}
}

// Reach connects, reads the greeting and says goodbye: no mail.
func (n *notifier) Reach(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	c, err := n.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Quit()
}

// compose renders the mail of p. rootID and rootSubject are the thread's
// (empty for the incident's first mail).
func (n *notifier) compose(p *alert.Page, rootID, rootSubject string) (msg []byte, id, subject string) {
	id = n.messageID(p)
	subject = oneLine(subjectOf(p))
	if rootID != "" {
		subject = "Re: " + cmp.Or(rootSubject, subject)
	}
	var h bytes.Buffer
	hdr := func(k, v string) { fmt.Fprintf(&h, "%s: %s\r\n", k, v) }
	hdr("From", n.spec.From.String())
	to := make([]string, len(n.spec.To))
	for i, a := range n.spec.To {
		to[i] = a.String()
	}
	hdr("To", strings.Join(to, ", "))
	hdr("Subject", mime.QEncoding.Encode("utf-8", subject))
	hdr("Date", cmp.Or(p.At, n.now()).Format(time.RFC1123Z))
	hdr("Message-ID", id)
	if rootID != "" {
		hdr("In-Reply-To", rootID)
		hdr("References", rootID)
		hdr("Thread-Topic", mime.QEncoding.Encode("utf-8", strings.TrimPrefix(subject, "Re: ")))
	}
	hdr("Auto-Submitted", "auto-generated") // RFC 3834: no vacation replies
	hdr("X-Prober-Dedup-Key", mime.QEncoding.Encode("utf-8", oneLine(p.DedupKey)))
	hdr("X-Prober-Kind", string(p.Kind))
	hdr("MIME-Version", "1.0")
	text := textBody(p)
	if !n.spec.HTML {
		hdr("Content-Type", "text/plain; charset=utf-8")
		hdr("Content-Transfer-Encoding", "quoted-printable")
		h.WriteString("\r\n")
		h.Write(qp(text))
		return h.Bytes(), id, subject
	}
	boundary := "prober-" + strings.Trim(id, "<>")
	boundary = boundary[:min(len(boundary), 60)]
	boundary = strings.NewReplacer("@", "-", ".", "-").Replace(boundary)
	hdr("Content-Type", `multipart/alternative; boundary="`+boundary+`"`)
	h.WriteString("\r\n")
	for _, part := range []struct{ typ, body string }{{"text/plain", text}, {"text/html", htmlBody(p, text)}} {
		fmt.Fprintf(&h, "--%s\r\nContent-Type: %s; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n", boundary, part.typ)
		h.Write(qp(part.body))
		h.WriteString("\r\n")
	}
	fmt.Fprintf(&h, "--%s--\r\n", boundary)
	return h.Bytes(), id, subject
}

// messageID is derived from the notification (incident, kind, time and
// note), not random: a retry sends the same Message-ID.
func (n *notifier) messageID(p *alert.Page) string {
	sum := sha256.Sum256([]byte(strings.Join([]string{p.DedupKey, string(p.Kind), p.At.UTC().Format(time.RFC3339Nano), p.Note, n.name}, "\x00")))
	domain := n.spec.From.Address[strings.LastIndexByte(n.spec.From.Address, '@')+1:]
	return "<" + hex.EncodeToString(sum[:16]) + ".prober@" + domain + ">"
}

// subjectOf is "[CRITICAL] checkout_failing: <summary>" (the summary on
// one line, cut), the incident's subject.
func subjectOf(p *alert.Page) string {
	sev := strings.ToUpper(cmp.Or(p.Severity, "critical"))
	if p.Kind == alert.Resolve {
		sev = "RESOLVED"
	}
	s := "[" + sev + "] " + cmp.Or(p.Rule, p.DedupKey)
	if sum := oneLine(p.Summary); sum != "" {
		s += ": " + alert.TruncateRunes(sum, subjectMax)
	}
	return s
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// headline is the body's first line: what this mail says of the incident.
func headline(p *alert.Page) string {
	switch p.Kind {
	case alert.Resolve:
		s := "RESOLVED"
		if !p.Since.IsZero() && p.At.After(p.Since) {
			s += " after " + p.At.Sub(p.Since).Round(time.Second).String()
		}
		return s + ": " + p.Summary
	case alert.Reminder:
		if p.Note != "" {
			return "NOTE: " + p.Note
		}
		return "STILL FAILING: " + p.Summary
	}
	return strings.ToUpper(cmp.Or(p.Severity, "critical")) + ": " + p.Summary
}

// textBody is the plain-text mail: the headline, the details, the links,
// and where it comes from.
func textBody(p *alert.Page) string {
	var b strings.Builder
	b.WriteString(headline(p))
	b.WriteString("\n")
	if p.Kind == alert.Reminder && p.Note != "" {
		b.WriteString("\n" + p.Summary + "\n")
	}
	if len(p.Details) > 0 {
		b.WriteString("\n")
	}
	for _, f := range p.Details {
		fmt.Fprintf(&b, "%s: %s\n", f.Name, f.Value)
	}
	if len(p.Links) > 0 {
		b.WriteString("\n")
	}
	for _, l := range p.Links {
		fmt.Fprintf(&b, "%s: %s\n", cmp.Or(l.Name, "link"), l.URL)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "rule: %s, severity: %s, source: %s\n", p.Rule, p.Severity, p.Source)
	fmt.Fprintf(&b, "dedup key: %s\n", p.DedupKey)
	if !p.Since.IsZero() {
		fmt.Fprintf(&b, "since: %s\n", p.Since.UTC().Format(time.RFC3339))
	}
	b.WriteString("-- \nprober\n")
	return b.String()
}

// htmlBody is the HTML alternative: the same text, escaped, the links
// clickable.
func htmlBody(p *alert.Page, text string) string {
	var b strings.Builder
	color := "#c62828"
	switch {
	case p.Kind == alert.Resolve:
		color = "#2e7d32"
	case strings.EqualFold(p.Severity, "warning"):
		color = "#f9a825"
	}
	fmt.Fprintf(&b, "<!DOCTYPE html>\n<html><body>\n<h2 style=\"color:%s\">%s</h2>\n<table>\n", color, html.EscapeString(headline(p)))
	for _, f := range p.Details {
		fmt.Fprintf(&b, "<tr><th align=\"left\">%s</th><td>%s</td></tr>\n", html.EscapeString(f.Name), html.EscapeString(f.Value))
	}
	b.WriteString("</table>\n<p>")
	for _, l := range p.Links {
		fmt.Fprintf(&b, "<a href=\"%s\">%s</a> ", html.EscapeString(l.URL), html.EscapeString(cmp.Or(l.Name, "link")))
	}
	fmt.Fprintf(&b, "</p>\n<pre>%s</pre>\n</body></html>\n", html.EscapeString(text))
	return b.String()
}

// qp encodes text as quoted-printable with CRLF line ends. The SMTP
// client stuffs lines that begin with a dot.
func qp(text string) []byte {
	var buf bytes.Buffer
	w := quotedprintable.NewWriter(&buf)
	_, _ = io.WriteString(w, strings.ReplaceAll(text, "\n", "\r\n"))
	_ = w.Close()
	return buf.Bytes()
}
