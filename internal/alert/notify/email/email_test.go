package email

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/alert"
	"github.com/prober-dev/prober/internal/alert/alerttest"
	"github.com/prober-dev/prober/internal/alert/notify/slack"
	"github.com/prober-dev/prober/internal/config"
)

const (
	testUser     = "prober@example.com"
	testPassword = "Sm7p-pa55w0rd.secret+XYZ"
)

// build loads a block for s (extra keys appended) and builds its
// notifier, trusting s's certificate.
func build(t *testing.T, s *smtpd, extra string, logs *alerttest.Buffer) *notifier {
	t.Helper()
	block := fmt.Sprintf(`{m: {type: email, smarthost: "%s", from: "prober <prober@example.com>", to: [oncall@example.com, "Pay Team <pay@example.com>"], password: "{{secret:S}}"%s}}`, s.addr, extra)
	cfg, errs := alerttest.Load(t, block, testPassword, Plugin{})
	if errs != nil {
		t.Fatal(errs)
	}
	o := alert.NotifierOptions{}
	if logs != nil {
		o.Logger = alerttest.Logger(logs)
	}
	n, err := Plugin{}.New(cfg.Alerting.Notifiers[0], o)
	if err != nil {
		t.Fatal(err)
	}
	nn := n.(*notifier)
	nn.tlsConfig = &tls.Config{RootCAs: s.pool}
	return nn
}

func withAuth(s *smtpd) { s.user, s.password = testUser, testPassword }

func parse(t *testing.T, r received) (*mail.Message, string) {
	t.Helper()
	m, err := mail.ReadMessage(strings.NewReader(r.Data))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(m.Body))
	if err != nil {
		t.Fatal(err)
	}
	return m, string(body)
}

var msgID = regexp.MustCompile(`^<[0-9a-f]{32}\.prober@example\.com>$`)

// The incident is one conversation: the trigger starts it, the note and
// the resolve reply to its Message-ID with its subject; every mail went
// over STARTTLS after AUTH PLAIN, to both recipients.
func TestThreadedIncident(t *testing.T) {
	s := newSMTPD(t, withAuth)
	n := build(t, s, "", nil)
	if n.Name() != "m" || n.Type() != Type {
		t.Errorf("Name, Type = %q, %q", n.Name(), n.Type())
	}
	ctx := context.Background()
	p := alerttest.SamplePage(alert.Trigger)
	th, err := n.Send(ctx, p, "")
	if err != nil {
		t.Fatal(err)
	}
	note := *p
	note.Kind, note.Note, note.At = alert.Reminder, "checkout_slo resolved (condition cleared); still firing: checkout_failing (critical)", p.At.Add(time.Minute)
	th2, err := n.Send(ctx, &note, th)
	if err != nil || th2 != th {
		t.Fatalf("note: %q, %v", th2, err)
	}
	res := *p
	res.Kind, res.At = alert.Resolve, p.Since.Add(47*time.Minute)
	if _, err := n.Send(ctx, &res, th); err != nil {
		t.Fatal(err)
	}
	mails := s.got()
	if len(mails) != 3 {
		t.Fatalf("%d mails", len(mails))
	}
	subject := `[CRITICAL] checkout_failing: checkout failing in 3/3 regions for 2m; step pay: json.status == "success" failed, got "processing"`
	var rootID string
	for i, r := range mails {
		if !r.TLS || !r.Authed || r.From != "prober@example.com" || !slices.Equal(r.To, []string{"oncall@example.com", "pay@example.com"}) || r.BadLine != "" {
			t.Errorf("mail %d: TLS %v auth %v from %q to %q bad line %q", i, r.TLS, r.Authed, r.From, r.To, r.BadLine)
		}
		m, body := parse(t, r)
		h := m.Header
		id := h.Get("Message-ID")
		if !msgID.MatchString(id) {
			t.Errorf("mail %d: Message-ID %q", i, id)
		}
		dec, _ := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
		for k, want := range map[string]string{"From": `"prober" <prober@example.com>`, "To": `<oncall@example.com>, "Pay Team" <pay@example.com>`,
			"Auto-Submitted": "auto-generated", "X-Prober-Dedup-Key": p.DedupKey, "MIME-Version": "1.0",
			"Content-Type": "text/plain; charset=utf-8", "Content-Transfer-Encoding": "quoted-printable"} {
			if h.Get(k) != want {
				t.Errorf("mail %d: %s = %q, want %q", i, k, h.Get(k), want)
			}
		}
		if i == 0 {
			rootID = id
			if dec != subject || h.Get("In-Reply-To") != "" || h.Get("References") != "" || th != id+"\n"+subject {
				t.Errorf("trigger: subject %q, In-Reply-To %q, thread %q", dec, h.Get("In-Reply-To"), th)
			}
			if d, err := h.Date(); err != nil || !d.Equal(p.At) {
				t.Errorf("Date %v, %v", d, err)
			}
			if !strings.HasPrefix(body, "CRITICAL: checkout failing in 3/3 regions") || !strings.Contains(body, "\r\ntrace: 4bf92f3577b34da6a3ce929d0e0e4736\r\n") ||
				!strings.Contains(body, "\r\nlogs: https://logs.example/search?q=4bf92f35\r\n") || !strings.Contains(body, "dedup key: checkout_failing/flow=checkout") {
				t.Errorf("trigger body:\n%s", body)
			}
			continue
		}
		if id == rootID || h.Get("In-Reply-To") != rootID || h.Get("References") != rootID || dec != "Re: "+subject {
			t.Errorf("mail %d: id %q In-Reply-To %q References %q subject %q", i, id, h.Get("In-Reply-To"), h.Get("References"), dec)
		}
		want := []string{"", "NOTE: checkout_slo resolved (condition cleared); still firing", "RESOLVED after 47m0s: checkout failing"}[i]
		if !strings.HasPrefix(body, want) {
			t.Errorf("mail %d body:\n%s", i, body)
		}
	}
	// The protocol, in order, the password never in the clear.
	cmds := s.commands()
	want := []string{"EHLO", "STARTTLS", "EHLO", "AUTH PLAIN ***", "MAIL FROM:<prober@example.com> BODY=8BITMIME", "RCPT TO:<oncall@example.com>", "RCPT TO:<pay@example.com>", "DATA", "QUIT"}
	for i, w := range want {
		if i >= len(cmds) || !strings.HasPrefix(cmds[i], w) {
			t.Fatalf("commands %q, want %q", cmds, want)
		}
	}
}

// A retry of the same notification sends the same Message-ID (clients
// show a duplicate once); another notification gets its own.
func TestMessageIDPerNotification(t *testing.T) {
	n := &notifier{name: "m", spec: &Spec{From: &mail.Address{Address: "p@example.com"}}}
	p := alerttest.SamplePage(alert.Trigger)
	a, b := n.messageID(p), n.messageID(alerttest.SamplePage(alert.Trigger))
	if a != b {
		t.Errorf("retry: %s != %s", a, b)
	}
	later := alerttest.SamplePage(alert.Trigger)
	later.At = later.At.Add(time.Hour) // the next incident of the key
	for _, q := range []*alert.Page{later, alerttest.SamplePage(alert.Resolve), alerttest.SamplePage(alert.Reminder)} {
		if n.messageID(q) == a {
			t.Errorf("%s at %s shares the trigger's Message-ID", q.Kind, q.At)
		}
	}
}

// Lines that begin with a dot are stuffed on the wire and arrive whole;
// a lone "." does not end the mail early.
func TestDotStuffing(t *testing.T) {
	s := newSMTPD(t, withAuth)
	n := build(t, s, "", nil)
	p := alerttest.SamplePage(alert.Trigger)
	p.Summary = "checkout failing\n.\n..two dots\n.hidden"
	if _, err := n.Send(context.Background(), p, ""); err != nil {
		t.Fatal(err)
	}
	r := s.got()[0]
	for _, w := range []string{"\r\n..\r\n", "\r\n...two dots\r\n", "\r\n..hidden\r\n"} {
		if !strings.Contains(r.Wire, w) {
			t.Errorf("wire lacks %q:\n%s", w, r.Wire)
		}
	}
	_, body := parse(t, r)
	if !strings.Contains(body, "checkout failing\r\n.\r\n..two dots\r\n.hidden\r\n") || !strings.HasSuffix(body, "-- \r\nprober\r\n") {
		t.Errorf("body:\n%q", body)
	}
}

// Errors say what was being done, are classified as the dispatcher
// retries them, and never hold the password (nor AUTH PLAIN's blob).
func TestDeliveryErrors(t *testing.T) {
	blob := base64.StdEncoding.EncodeToString([]byte("\x00" + testUser + "\x00" + testPassword))
	for _, tt := range []struct {
		name      string
		setup     func(s *smtpd)
		permanent bool
		msg       string
		delivered int
	}{
		{name: "busy greeting", setup: func(s *smtpd) { s.reply["greeting"] = "421 4.3.2 too busy" }, msg: "reading the greeting: 421 4.3.2 too busy"},
		{name: "wrong password", setup: func(s *smtpd) { s.password = "other-password-1234" }, permanent: true, msg: "authenticating as prober@example.com: 535 5.7.8 Authentication credentials invalid"},
		{name: "server echoes the password", setup: func(s *smtpd) { s.reply["AUTH"] = "535 5.7.8 bad: " + testPassword + " / " + blob }, permanent: true,
			msg: "535 5.7.8 bad: [secret:password] / [secret:auth_plain]"},
		{name: "MAIL 451", setup: func(s *smtpd) { s.reply["MAIL"] = "451 4.3.0 try later" }, msg: "MAIL FROM: 451 4.3.0 try later"},
		{name: "every recipient refused", setup: func(s *smtpd) {
			s.refuse["oncall@example.com"] = "550 5.1.1 no such user"
			s.refuse["pay@example.com"] = "550 5.1.1 no such user"
		}, permanent: true, msg: "every recipient refused: oncall@example.com: 550 5.1.1 no such user; pay@example.com: 550"},
		{name: "one recipient full for now", setup: func(s *smtpd) { s.refuse["pay@example.com"] = "452 4.2.2 mailbox full" }, msg: "RCPT TO pay@example.com: 452 4.2.2 mailbox full"},
		{name: "message refused", setup: func(s *smtpd) { s.reply["DATA-END"] = "554 5.6.0 message refused" }, permanent: true, msg: "sending the message: 554 5.6.0 message refused"},
		{name: "message deferred", setup: func(s *smtpd) { s.reply["DATA-END"] = "451 4.7.1 greylisted" }, msg: "sending the message: 451 4.7.1 greylisted"},
		{name: "no STARTTLS offered", setup: func(s *smtpd) { s.startTLS = false }, permanent: true, msg: "the smarthost offers no STARTTLS"},
		{name: "no AUTH PLAIN offered", setup: func(s *smtpd) { s.password = "" }, permanent: true, msg: "the smarthost offers no AUTH PLAIN"},
		{name: "untrusted certificate (setup nil)", msg: "starting TLS: "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newSMTPD(t, func(s *smtpd) {
				withAuth(s)
				if tt.setup != nil {
					tt.setup(s)
				}
			})
			logs := &alerttest.Buffer{}
			n := build(t, s, "", logs)
			if tt.setup == nil {
				n.tlsConfig = nil // the system's roots: the test's certificate is unknown
			}
			_, err := n.Send(context.Background(), alerttest.SamplePage(alert.Trigger), "")
			var de *alert.DeliveryError
			if !errors.As(err, &de) {
				t.Fatalf("Send = %v, want a *alert.DeliveryError", err)
			}
			if de.Permanent != tt.permanent || de.Status != 0 || !strings.Contains(de.Error(), tt.msg) {
				t.Errorf("got %+v (%q); want permanent=%v msg~%q", de, de.Error(), tt.permanent, tt.msg)
			}
			if len(s.got()) != tt.delivered {
				t.Errorf("%d mails delivered", len(s.got()))
			}
			alerttest.NoSecrets(t, err.Error()+logs.String(), testPassword, blob)
		})
	}
	t.Run("nobody listening", func(t *testing.T) {
		s := newSMTPD(t, withAuth)
		n := build(t, s, "", nil)
		s.ln.Close()
		_, err := n.Send(context.Background(), alerttest.SamplePage(alert.Trigger), "")
		var de *alert.DeliveryError
		if !errors.As(err, &de) || de.Permanent || !strings.Contains(err.Error(), "connecting to the smarthost") {
			t.Errorf("Send = %v", err)
		}
	})
}

// A recipient refused for good does not hold the page back from the
// others: they get it, and the refusal is logged.
func TestOneRecipientRefused(t *testing.T) {
	s := newSMTPD(t, func(s *smtpd) { withAuth(s); s.refuse["pay@example.com"] = "550 5.1.1 no such user" })
	logs := &alerttest.Buffer{}
	n := build(t, s, "", logs)
	if _, err := n.Send(context.Background(), alerttest.SamplePage(alert.Trigger), ""); err != nil {
		t.Fatal(err)
	}
	if m := s.got(); len(m) != 1 || !slices.Equal(m[0].To, []string{"oncall@example.com"}) {
		t.Errorf("mails %+v", m)
	}
	if l := logs.Lines(t, "mail_recipients_refused"); len(l) != 1 || l[0]["refused"] != "pay@example.com: 550 5.1.1 no such user" {
		t.Errorf("log %v", l)
	}
}

// Implicit TLS (SMTPS) and a clear-text local relay without a password.
func TestTLSModes(t *testing.T) {
	s := newSMTPD(t, func(s *smtpd) { withAuth(s); s.implicit, s.startTLS = true, false })
	if _, err := build(t, s, ", tls: implicit", nil).Send(context.Background(), alerttest.SamplePage(alert.Trigger), ""); err != nil {
		t.Fatal(err)
	}
	if m := s.got(); len(m) != 1 || !m[0].TLS || !m[0].Authed || slices.Contains(s.commands(), "STARTTLS") {
		t.Errorf("implicit: %+v %q", m, s.commands())
	}
	relay := newSMTPD(t, func(s *smtpd) { s.startTLS = false })
	cfg, errs := alerttest.Load(t, `{m: {type: email, smarthost: "`+relay.addr+`", from: prober@example.com, to: oncall@example.com, tls: none}}`, testPassword, Plugin{})
	if errs != nil {
		t.Fatal(errs)
	}
	n, err := Plugin{}.New(cfg.Alerting.Notifiers[0], alert.NotifierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Send(context.Background(), alerttest.SamplePage(alert.Trigger), ""); err != nil {
		t.Fatal(err)
	}
	if m := relay.got(); len(m) != 1 || m[0].TLS || m[0].Authed {
		t.Errorf("relay: %+v", m)
	}
}

// html: true adds an HTML alternative, escaped, the links clickable.
func TestHTMLAlternative(t *testing.T) {
	s := newSMTPD(t, withAuth)
	n := build(t, s, ", html: true", nil)
	p := alerttest.SamplePage(alert.Trigger)
	p.Details = append(p.Details, alert.Field{Name: "body", Value: `<script>alert("x")</script>`})
	if _, err := n.Send(context.Background(), p, ""); err != nil {
		t.Fatal(err)
	}
	m, err := mail.ReadMessage(strings.NewReader(s.got()[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type %q", m.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	var types, bodies []string
	for {
		part, err := mr.NextPart() // decodes quoted-printable
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(part)
		types = append(types, part.Header.Get("Content-Type"))
		bodies = append(bodies, string(b))
	}
	if !slices.Equal(types, []string{"text/plain; charset=utf-8", "text/html; charset=utf-8"}) {
		t.Fatalf("parts %q", types)
	}
	if strings.Contains(bodies[1], "<script>") || !strings.Contains(bodies[1], "&lt;script&gt;") ||
		!strings.Contains(bodies[1], `<a href="https://logs.example/search?q=4bf92f35">logs</a>`) || !strings.Contains(bodies[0], "CRITICAL: checkout failing") {
		t.Errorf("bodies:\n%s\n---\n%s", bodies[0], bodies[1])
	}
}

// The probe greets and quits: no mail, no AUTH.
func TestReach(t *testing.T) {
	s := newSMTPD(t, withAuth)
	n := build(t, s, "", nil)
	var rc alert.Reacher = n
	if err := rc.Reach(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c := s.commands(); !slices.Equal(c, []string{"EHLO " + n.hello, "QUIT"}) || len(s.got()) != 0 {
		t.Errorf("commands %q", c)
	}
	s.set(func() { s.reply["greeting"] = "421 4.3.2 shutting down" })
	if err := rc.Reach(context.Background()); err == nil {
		t.Error("a 421 greeting counted as reachable")
	}
}

func TestDecode(t *testing.T) {
	cfg, errs := alerttest.Load(t, `{m: {type: email, smarthost: "smtp.example.com:587", from: "prober <p@example.com>", to: [a@example.com, "B <b@example.com>"], password: "{{secret:S}}", username: u1}, off: {type: email, smarthost: "h:25", from: p@example.com, to: a@example.com, password: "{{secret:OPT}}"}}`, testPassword, Plugin{})
	if errs != nil {
		t.Fatal(errs)
	}
	s := cfg.Alerting.Notifiers[0].Spec.(*Spec)
	if s.Smarthost != "smtp.example.com:587" || s.From.Address != "p@example.com" || len(s.To) != 2 || s.To[1].Name != "B" ||
		s.Password != testPassword || s.Username != "u1" || s.TLS != StartTLS || s.HTML {
		t.Errorf("spec %+v", s)
	}
	if off := cfg.Alerting.Notifiers[1]; off.Disabled != "optional secret OPT is not set" || off.Spec.(*Spec).Username != "p@example.com" {
		t.Errorf("off: %+v", off)
	}
	// Mail does not page: warnings go to it by default.
	if r := cfg.Alerting.Routes; !slices.Contains(r["warning"], "m") {
		t.Errorf("routes %v", r)
	}
	base := `type: email, smarthost: "h:25", from: p@example.com, to: a@example.com`
	for _, tt := range []struct{ block, want string }{
		{`{x: {type: email}}`, "probes.yaml:3:13: email notifier x needs smarthost\nprobes.yaml:3:13: email notifier x needs from\nprobes.yaml:3:13: email notifier x needs to"},
		{`{x: {type: email, smarthost: "h", from: p@example.com, to: a@example.com}}`, `probes.yaml:3:41: smarthost "h" is not host:port (smtp.example.com:587)`},
		{`{x: {type: email, smarthost: "h:0", from: p@example.com, to: a@example.com}}`, `probes.yaml:3:41: smarthost "h:0" is not host:port (smtp.example.com:587)`},
		{`{x: {type: email, smarthost: "h:25", from: "not an address", to: a@example.com}}`, `probes.yaml:3:55: from "not an address" is not an address: mail: no angle-addr`},
		{`{x: {type: email, smarthost: "h:25", from: p@example.com, to: [a@example.com, bee]}}`, `probes.yaml:3:90: "bee" is not an address: mail: missing '@' or angle-addr`},
		{`{x: {` + base + `, tls: ssl}}`, `probes.yaml:3:94: tls must be starttls, implicit or none, got "ssl"`},
		{`{x: {` + base + `, html: maybe}}`, `probes.yaml:3:95: html must be true or false, got "maybe"`},
		{`{x: {` + base + `, tls: none, password: "{{secret:S}}"}}`, `probes.yaml:3:110: a password needs tls: starttls or implicit (it would cross the network in the clear)`},
		{`{x: {` + base + `, username: u}}`, `probes.yaml:3:99: username without a password`},
		{`{x: {` + base + `, password: "{{secret:NOPE}}"}}`, `probes.yaml:3:100: undefined secret "NOPE" (declare it under secrets: in probes.yaml)`},
		{`{x: {` + base + `, channel: "#a"}}`, `probes.yaml:3:89: channel does not apply to a email notifier`},
	} {
		_, errs := alerttest.Load(t, tt.block, testPassword, Plugin{}, slack.Plugin{})
		got := strings.Join(errs, "\n")
		if got != tt.want {
			t.Errorf("%s:\n%s\nwant:\n%s", tt.block, got, tt.want)
		}
		alerttest.NoSecrets(t, got, testPassword)
	}
}

func TestCheckSecrets(t *testing.T) {
	for _, tt := range []struct{ pw, want string }{
		{testPassword, ""},
		{"", ""},
		{testPassword + "\n", "password has leading or trailing whitespace (a newline from the secret's source?)"},
		{"abc\x00defghijklmnop", "password holds a NUL byte, which AUTH PLAIN cannot carry"},
	} {
		got := strings.Join(Plugin{}.CheckSecrets(&config.Notifier{Spec: &Spec{Password: tt.pw}}), "\n")
		if got != tt.want {
			t.Errorf("%q: %q, want %q", tt.pw, got, tt.want)
		}
		if tt.pw != "" {
			alerttest.NoSecrets(t, got, tt.pw)
		}
	}
	if _, err := (Plugin{}).New(&config.Notifier{Name: "m"}, alert.NotifierOptions{}); err == nil {
		t.Error("New without a smarthost accepted")
	}
}

// Through the real pipeline: a busy server and a deferred MAIL are retried
// by the dispatcher; the incident arrives as two mails, threaded, once
// each, and the password is in no log line.
func TestDispatcherRetriesThreaded(t *testing.T) {
	s := newSMTPD(t, func(s *smtpd) {
		withAuth(s)
		s.reply["greeting"] = "421 4.3.2 too busy"
		s.reply["MAIL"] = "451 4.3.0 try later"
	})
	logs := &alerttest.Buffer{}
	nt := build(t, s, "", logs)
	cfg, _ := alerttest.Load(t, fmt.Sprintf(`{m: {type: email, smarthost: "%s", from: p@example.com, to: a@example.com}}`, s.addr), testPassword, Plugin{})
	alerttest.FireAndResolve(t, cfg, nt, logs)
	mails := s.got()
	if len(mails) != 2 {
		t.Fatalf("%d mails", len(mails))
	}
	first, _ := parse(t, mails[0])
	second, body := parse(t, mails[1])
	if id := first.Header.Get("Message-ID"); id == "" || second.Header.Get("In-Reply-To") != id || !strings.HasPrefix(body, "RESOLVED after 1h0m0s") {
		t.Errorf("not threaded: %q -> %q; %s", id, second.Header.Get("In-Reply-To"), body)
	}
	if retries := logs.Lines(t, "page_retry"); len(retries) != 2 {
		t.Errorf("%d page_retry lines, want 2", len(retries))
	}
	alerttest.NoSecrets(t, logs.String(), testPassword)
	// Connections also carry the dispatcher's reachability probes
	// (greeting and QUIT); MAIL was tried 3 times, DATA 2.
	var mailCmds, dataCmds int
	for _, c := range s.commands() {
		mailCmds += boolInt(strings.HasPrefix(c, "MAIL "))
		dataCmds += boolInt(c == "DATA")
	}
	s.mu.Lock()
	logins := s.authOK
	s.mu.Unlock()
	if mailCmds != 3 || dataCmds != 2 || logins != 3 {
		t.Errorf("%d MAIL (want 3: deferred, trigger, resolve), %d DATA (want 2), %d logins (want 3)", mailCmds, dataCmds, logins)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// A summary cannot add headers: the subject is one line, non-ASCII
// encoded (RFC 2047).
func TestSubjectOneEncodedLine(t *testing.T) {
	s := newSMTPD(t, withAuth)
	p := alerttest.SamplePage(alert.Trigger)
	p.Summary = "caf\u00e9 down\r\nBcc: evil@example.org\n"
	if _, err := build(t, s, "", nil).Send(context.Background(), p, ""); err != nil {
		t.Fatal(err)
	}
	m, _ := parse(t, s.got()[0])
	raw := m.Header.Get("Subject")
	dec, err := new(mime.WordDecoder).DecodeHeader(raw)
	if err != nil || !strings.HasPrefix(raw, "=?utf-8?q?") || dec != "[CRITICAL] checkout_failing: caf\u00e9 down Bcc: evil@example.org" || m.Header.Get("Bcc") != "" {
		t.Errorf("subject %q (%q), Bcc %q", raw, dec, m.Header.Get("Bcc"))
	}
}
