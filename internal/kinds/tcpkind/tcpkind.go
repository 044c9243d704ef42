// Package tcpkind is the tcp step kind: it connects to host:port and,
// optionally, sends bytes and reads the reply up to a regular expression,
// for banner protocols (SMTP, Redis, Postgres, SSH). The reply is the
// step's body for expectations and captures.
package tcpkind

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prober-dev/prober/internal/assert"
	"github.com/prober-dev/prober/internal/certinfo"
	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/kinds"
	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/runner"
	"github.com/prober-dev/prober/internal/template"
)

// ReadLimit bounds the reply read: a banner is short, and a server that
// streams must not fill memory.
const ReadLimit = 4 << 10

// Kind is the tcp step kind, for config.Options.StepKinds.
type Kind struct{}

// Name implements config.StepKind.
func (Kind) Name() string { return "tcp" }

// Keys implements config.StepKind.
func (Kind) Keys() []string { return []string{"address", "send", "reply", "starttls"} }

// Operands implements config.StepKind: the certificate's and the TLS
// connection's, set when the step upgrades with starttls.
func (Kind) Operands() assert.Operands { return certinfo.Operands }

// Builtins implements config.StepKind: the reply is the body (and may be
// read as JSON).
func (Kind) Builtins() assert.Source { return assert.SourceBody | assert.SourceJSON }

// Spec is a decoded tcp: block; it runs as a runner.Executor.
type Spec struct {
	Address *template.Template
	Send    *template.Template // nil: send nothing
	Reply   *regexp.Regexp     // nil: read nothing; else read until it matches
	// StartTLS, when set, upgrades the connection to TLS once the reply
	// (the server's go-ahead to STARTTLS) is seen, and records the
	// certificate as a tls step does.
	StartTLS *kinds.TLSClient
}

// MakesTLSHandshake says whether the step records a certificate (the
// series calculator counts its expiry series).
func (s *Spec) MakesTLSHandshake() bool { return s.StartTLS != nil }

// Decode implements config.StepKind.
func (Kind) Decode(b *config.StepBlock) any {
	s := &Spec{Address: kinds.Address(b, "")}
	if t, ok := b.Template("send", "the bytes to send"); ok {
		s.Send = t
	}
	if v, ok := b.String("reply", "a regular expression"); ok {
		re, err := regexp.Compile(v)
		if err != nil {
			b.Errorf("reply", "reply: %v", err)
		} else {
			s.Reply = re
		}
	}
	if tb, ok := b.Block("starttls", kinds.TLSKeys); ok {
		c := kinds.DecodeTLS(tb)
		s.StartTLS = &c
	} else if on, ok := b.Bool("starttls"); ok && on {
		s.StartTLS = &kinds.TLSClient{Verify: true}
	}
	if s.StartTLS != nil && !b.Has("reply") {
		b.Errorf("starttls", "starttls needs a reply: the server's go-ahead to start TLS (e.g. \"(?m)^220 .*\\r\\n\" after EHLO and STARTTLS)")
	}
	return s
}

// Target is what the step talks to, as the flow page lists it: its
// address as configured ("tcp://{{host}}:port").
func (s *Spec) Target() string { return "tcp://" + s.Address.String() }

// Execute implements runner.Executor.
func (s *Spec) Execute(ctx context.Context, x *runner.Exchange) (result.Class, string) {
	addr, err := x.Expand(s.Address)
	if err != nil {
		return x.Classify(err, runner.Phase{})
	}
	var send string
	if s.Send != nil {
		if send, err = x.Expand(s.Send); err != nil {
			return x.Classify(err, runner.Phase{})
		}
	}
	x.Target("tcp://" + addr)
	tm := x.Timings()
	t0 := time.Now()
	conn, err := x.Dial(ctx, "tcp", addr)
	if err != nil {
		return x.Classify(err, runner.Phase{})
	}
	defer conn.Close()
	tm.Connect = time.Since(t0)
	// Reads and writes end with the step's context (timeout or shutdown).
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if send != "" {
		if _, err := io.WriteString(conn, send); err != nil {
			return x.Classify(ctxErr(ctx, err), runner.Phase{Connected: true, Sent: true})
		}
	}
	if s.Reply == nil {
		return "", ""
	}
	r := x.Response()
	buf := r.Body[:0]
	if cap(buf) < ReadLimit {
		buf = make([]byte, 0, ReadLimit)
	}
	var rerr error
	for !s.Reply.Match(buf) && len(buf) < ReadLimit {
		var n int
		n, rerr = conn.Read(buf[len(buf):ReadLimit])
		if n > 0 && len(buf) == 0 {
			tm.FirstByte = time.Since(x.Started())
		}
		buf = buf[:len(buf)+n]
		if rerr != nil {
			break
		}
	}
	r.Body = buf
	x.BodyBytes(int64(len(buf)))
	x.Attr("reply", firstLine(buf))
	if s.Reply.Match(buf) {
		if s.StartTLS != nil {
			return s.upgrade(ctx, x, conn, addr)
		}
		return "", ""
	}
	if rerr != nil && !errors.Is(rerr, io.EOF) {
		return x.Classify(ctxErr(ctx, rerr), runner.Phase{Connected: true, Sent: true})
	}
	why := "the connection closed"
	if rerr == nil {
		why = "read " + strconv.Itoa(ReadLimit) + " bytes"
	}
	return result.Assertion, "reply " + strconv.Quote(s.Reply.String()) + " not seen (" + why + "): got " + quote(buf)
}

// upgrade makes the TLS handshake on conn after the server's go-ahead, and
// records the certificate as a tls step does.
func (s *Spec) upgrade(ctx context.Context, x *runner.Exchange, conn net.Conn, addr string) (result.Class, string) {
	name := s.StartTLS.ServerName
	if name == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return result.Request, fmt.Sprintf("address %q is not host:port", addr)
		}
		name = host
	}
	conf := &tls.Config{
		ServerName: name,
		// Verified below, by hand: a certificate that does not verify is
		// still read, so its dates and names show in the result.
		InsecureSkipVerify: true, //nolint:gosec // verified below
	}
	if s.StartTLS.ClientCert != nil {
		conf.Certificates = []tls.Certificate{*s.StartTLS.ClientCert}
	}
	tc := tls.Client(conn, conf)
	t0 := time.Now()
	if err := tc.HandshakeContext(ctx); err != nil {
		return x.Classify(ctxErr(ctx, err), runner.Phase{Connected: true, TLSStarted: true})
	}
	x.Timings().TLS = time.Since(t0)
	cs := tc.ConnectionState()
	if len(cs.PeerCertificates) == 0 {
		return result.TLS, "tls: the server sent no certificate"
	}
	now := time.Now()
	verr := kinds.VerifyChain(cs.PeerCertificates, name, s.StartTLS.Roots, now)
	for _, a := range certinfo.Record(x.Response(), &cs, verr, now) {
		x.Attr(a.Name, a.Value)
	}
	if verr != nil && s.StartTLS.Verify {
		return result.TLS, "tls: " + verr.Error()
	}
	return "", ""
}

// ctxErr prefers the context's error: a read cut short by it is a timeout.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// firstLine is the reply's first line, shortened, for the result.
func firstLine(b []byte) string {
	s := string(b)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

func quote(b []byte) string {
	if len(b) == 0 {
		return "nothing"
	}
	if len(b) > 100 {
		return strconv.Quote(string(b[:100])) + "…"
	}
	return strconv.Quote(string(b))
}
