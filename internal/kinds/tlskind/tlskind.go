// Package tlskind is the tls step kind: it connects to host:port, makes a
// TLS handshake and exposes the server's certificate and the connection to
// expectations: cert.expires_in > 14d, tls.version == "TLS 1.3".
package tlskind

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/prober-dev/prober/internal/assert"
	"github.com/prober-dev/prober/internal/certinfo"
	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/kinds"
	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/runner"
	"github.com/prober-dev/prober/internal/template"
)

// Kind is the tls step kind, for config.Options.StepKinds.
type Kind struct{}

// Name implements config.StepKind.
func (Kind) Name() string { return "tls" }

// Keys implements config.StepKind.
func (Kind) Keys() []string { return append([]string{"address"}, kinds.TLSKeys...) }

// Operands implements config.StepKind.
func (Kind) Operands() assert.Operands { return Operands }

// Builtins implements config.StepKind: duration only.
func (Kind) Builtins() assert.Source { return 0 }

// Operands are what tls steps' expectations read (besides duration).
var Operands = certinfo.Operands

// Spec is a decoded tls: block; it runs as a runner.Executor.
type Spec struct {
	Address *template.Template
	kinds.TLSClient
}

// MakesTLSHandshake says that a tls step records a certificate whenever it
// gets one: the series calculator counts its expiry series.
func (*Spec) MakesTLSHandshake() bool { return true }

// Decode implements config.StepKind.
func (Kind) Decode(b *config.StepBlock) any {
	return &Spec{Address: kinds.Address(b, "443"), TLSClient: kinds.DecodeTLS(b)}
}

// Target is what the step talks to, as the flow page lists it: its
// address as configured ("tls://{{host}}:port").
func (s *Spec) Target() string { return "tls://" + s.Address.String() }

// Execute implements runner.Executor.
func (s *Spec) Execute(ctx context.Context, x *runner.Exchange) (result.Class, string) {
	addr, err := x.Expand(s.Address)
	if err != nil {
		return x.Classify(err, runner.Phase{})
	}
	addr = kinds.WithPort(addr, "443")
	x.Target("tls://" + addr)
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return result.Request, fmt.Sprintf("address %q is not host:port", addr)
	}
	name := s.ServerName
	if name == "" {
		name = host
	}
	tm := x.Timings()
	t0 := time.Now()
	conn, err := x.Dial(ctx, "tcp", addr)
	if err != nil {
		return x.Classify(err, runner.Phase{})
	}
	defer conn.Close()
	tm.Connect = time.Since(t0)
	conf := &tls.Config{
		ServerName: name,
		// Verified below, by hand: a certificate that does not verify is
		// still read, so its dates and names show in the result.
		InsecureSkipVerify: true, //nolint:gosec // verified below
	}
	if s.ClientCert != nil {
		conf.Certificates = []tls.Certificate{*s.ClientCert}
	}
	tc := tls.Client(conn, conf)
	t1 := time.Now()
	if err := tc.HandshakeContext(ctx); err != nil {
		return x.Classify(err, runner.Phase{Connected: true, TLSStarted: true})
	}
	tm.TLS = time.Since(t1)
	cs := tc.ConnectionState()
	if len(cs.PeerCertificates) == 0 {
		return result.TLS, "tls: the server sent no certificate"
	}
	now := time.Now()
	verr := kinds.VerifyChain(cs.PeerCertificates, name, s.Roots, now)
	record(x, &cs, verr, now)
	if verr != nil && s.Verify {
		return result.TLS, "tls: " + verr.Error()
	}
	return "", ""
}

// record sets the operands and the step's attributes.
func record(x *runner.Exchange, cs *tls.ConnectionState, verr error, now time.Time) {
	for _, a := range certinfo.Record(x.Response(), cs, verr, now) {
		x.Attr(a.Name, a.Value)
	}
}
