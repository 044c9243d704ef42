// Package dnskind is the dns step kind: one query (A, AAAA, CNAME, MX, TXT,
// SRV, NS, SOA) to a chosen server over UDP or TCP, with the answer's
// rcode, records, TTL and authority as operands: rcode == "NOERROR",
// answers contains "192.0.2.10", ttl >= 5m.
package dnskind

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/prober-dev/prober/internal/assert"
	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/kinds"
	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/runner"
	"github.com/prober-dev/prober/internal/template"
)

// UDPSize is the EDNS0 buffer size offered over UDP: the DNS flag day 2020
// value, which avoids IP fragmentation; a longer answer comes truncated and
// is asked again over TCP.
const UDPSize = 1232

// Kind is the dns step kind, for config.Options.StepKinds.
type Kind struct {
	// ResolvConf is where the default server comes from (its first
	// nameserver); "" is /etc/resolv.conf. Read when a step runs, so a
	// changed file counts from the next run.
	ResolvConf string
}

// Name implements config.StepKind.
func (Kind) Name() string { return "dns" }

// Keys implements config.StepKind.
func (Kind) Keys() []string { return []string{"name", "type", "server", "transport", "recursion"} }

// Operands implements config.StepKind.
func (Kind) Operands() assert.Operands { return Operands }

// Builtins implements config.StepKind: duration only.
func (Kind) Builtins() assert.Source { return 0 }

// Operands are what dns steps' expectations and captures read (besides
// duration).
var Operands = assert.Operands{
	"rcode":         assert.StringOperand, // "NOERROR", "NXDOMAIN", "SERVFAIL", ...
	"answers":       assert.StringOperand, // the answers of the asked type, one a line, as in a zone file: "10 mail.example.com."
	"answers.count": assert.NumberOperand, // how many
	"ttl":           assert.DurationOperand,
	"authoritative": assert.BoolOperand, // the AA bit
}

// Types are the record types a step may ask for.
var Types = map[string]uint16{
	"A": dns.TypeA, "AAAA": dns.TypeAAAA, "CNAME": dns.TypeCNAME, "MX": dns.TypeMX,
	"TXT": dns.TypeTXT, "SRV": dns.TypeSRV, "NS": dns.TypeNS, "SOA": dns.TypeSOA,
}

// Spec is a decoded dns: block; it runs as a runner.Executor.
type Spec struct {
	Name      *template.Template
	Type      uint16
	Server    *template.Template // nil: the first nameserver of resolv.conf
	TCP       bool               // else UDP, and TCP when the answer is truncated
	Recursion bool               // the RD bit; default true

	resolvConf string
	// step is the step being decoded: its expectations, set after the
	// block, say whether the flow checks rcode itself.
	step *config.Step
}

// Decode implements config.StepKind.
func (k Kind) Decode(b *config.StepBlock) any {
	s := &Spec{Type: dns.TypeA, Recursion: true, resolvConf: k.ResolvConf, step: b.Step()}
	if !b.Has("name") {
		b.Errorf("", "dns needs a name (the domain name to ask for)")
	} else if t, ok := b.Template("name", "a domain name"); ok {
		if _, valid := dns.IsDomainName(t.String()); t.IsLiteral() && (!valid || t.String() == "") {
			b.Errorf("name", "name %q is not a domain name", t.String())
		}
		s.Name = t
	}
	if v, ok := b.String("type", "a record type"); ok {
		if t, known := Types[strings.ToUpper(v)]; known {
			s.Type = t
		} else {
			b.Errorf("type", "type %q is not one of %s", v, typeNames())
		}
	}
	if b.Has("server") {
		if t, ok := b.Template("server", "a server (host or host:port)"); ok {
			if _, _, err := net.SplitHostPort(kinds.WithPort(t.String(), "53")); t.IsLiteral() && (err != nil || t.String() == "") {
				b.Errorf("server", "server %q is not host:port", t.String())
			}
			s.Server = t
		}
	}
	if v, ok := b.String("transport", "udp or tcp"); ok {
		switch v {
		case "udp":
		case "tcp":
			s.TCP = true
		default:
			b.Errorf("transport", "transport %q is not udp or tcp", v)
		}
	}
	if v, ok := b.Bool("recursion"); ok {
		s.Recursion = v
	}
	return s
}

func typeNames() string {
	names := make([]string, 0, len(Types))
	for n := range Types {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// Execute implements runner.Executor.
func (s *Spec) Execute(ctx context.Context, x *runner.Exchange) (result.Class, string) {
	name, err := x.Expand(s.Name)
	if err != nil {
		return x.Classify(err, runner.Phase{})
	}
	server := ""
	if s.Server != nil {
		if server, err = x.Expand(s.Server); err != nil {
			return x.Classify(err, runner.Phase{})
		}
	} else if server, err = defaultServer(s.resolvConf); err != nil {
		return result.Request, err.Error()
	}
	server = kinds.WithPort(server, "53")
	qtype := dns.TypeToString[s.Type]
	x.Target("dns://" + server + "/" + name + "?type=" + qtype)
	if _, ok := dns.IsDomainName(name); !ok || name == "" {
		return result.Request, fmt.Sprintf("name %q is not a domain name", name)
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), s.Type)
	m.RecursionDesired = s.Recursion
	network := "udp"
	if s.TCP {
		network = "tcp"
	}
	reply, class, msg := exchange(ctx, x, network, server, m)
	if reply != nil && reply.Truncated && network == "udp" {
		// As resolvers do (RFC 7766): a truncated answer is asked again
		// over TCP, and that answer counts.
		x.Attr("transport", "tcp (udp answer truncated)")
		reply, class, msg = exchange(ctx, x, "tcp", server, m)
	}
	if reply == nil {
		return class, msg
	}
	return s.record(x, reply)
}

// exchange sends m over network and reads the answer: the answer, or nil
// and a failure class and message.
func exchange(ctx context.Context, x *runner.Exchange, network, server string, m *dns.Msg) (*dns.Msg, result.Class, string) {
	tm := x.Timings()
	t0 := time.Now()
	conn, err := x.Dial(ctx, network, server)
	if err != nil {
		c, msg := x.Classify(err, runner.Phase{})
		return nil, c, msg
	}
	defer conn.Close()
	if network == "tcp" {
		tm.Connect += time.Since(t0)
	}
	// The step's context ends the query (its timeout, or shutdown): the
	// client's own timeouts are set out of the way.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	q := m.Copy()
	if network == "udp" {
		q.SetEdns0(UDPSize, false)
	}
	c := &dns.Client{Net: network, Timeout: time.Hour}
	reply, rtt, err := c.ExchangeWithConnContext(ctx, q, &dns.Conn{Conn: conn})
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		class, msg := x.Classify(fmt.Errorf("dns query over %s: %w", network, err), runner.Phase{Connected: true, Sent: true})
		return nil, class, msg
	}
	tm.FirstByte = time.Since(x.Started())
	r := x.Response()
	r.Duration += rtt
	x.BodyBytes(int64(reply.Len()))
	return reply, "", ""
}

// record sets the operands and attributes from the answer, and fails the
// step on an rcode other than NOERROR when no expectation reads rcode (as
// blackbox_exporter's valid_rcodes defaults to NOERROR): a flow that
// expects NXDOMAIN says so.
func (s *Spec) record(x *runner.Exchange, reply *dns.Msg) (result.Class, string) {
	r := x.Response()
	rcode, ok := dns.RcodeToString[reply.Rcode]
	if !ok {
		rcode = "RCODE" + strconv.Itoa(reply.Rcode)
	}
	var answers []string
	var ttl uint32
	for i, rr := range reply.Answer {
		h := rr.Header()
		if i == 0 || h.Ttl < ttl {
			ttl = h.Ttl
		}
		if h.Rrtype == s.Type {
			answers = append(answers, Value(rr))
		}
	}
	r.SetString("rcode", rcode)
	r.SetString("answers", strings.Join(answers, "\n"))
	r.SetInt("answers.count", int64(len(answers)))
	r.SetBool("authoritative", reply.Authoritative)
	if len(reply.Answer) > 0 {
		r.SetDuration("ttl", time.Duration(ttl)*time.Second)
	}
	x.Attr("rcode", rcode)
	x.Attr("answers", shorten(strings.Join(answers, ", ")))
	if reply.Rcode != dns.RcodeSuccess && !s.rcodeChecked() {
		return result.Assertion, fmt.Sprintf(`rcode == "NOERROR" (the default when no expectation reads rcode): got %q`, rcode)
	}
	return "", ""
}

// rcodeChecked says whether an expectation of the step (or of its until)
// reads rcode.
func (s *Spec) rcodeChecked() bool {
	exps := s.step.Expect
	if s.step.Until != nil {
		exps = append(slices.Clip(exps), s.step.Until.Expect...)
	}
	for _, e := range exps {
		if e.Reads("rcode") {
			return true
		}
	}
	return false
}

// Value is a record's data as text, as in a zone file without the name,
// TTL, class and type ("10 mail.example.com." for MX); a TXT record's
// strings are joined without quotes, as SPF and DKIM read them.
func Value(rr dns.RR) string {
	if t, ok := rr.(*dns.TXT); ok {
		return strings.Join(t.Txt, "")
	}
	return strings.TrimPrefix(rr.String(), rr.Header().String())
}

// defaultServer is the first nameserver of the resolv.conf at path.
func defaultServer(path string) (string, error) {
	if path == "" {
		path = "/etc/resolv.conf"
	}
	cc, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return "", fmt.Errorf("dns: no server given, and reading %s: %w", path, err)
	}
	if len(cc.Servers) == 0 {
		return "", fmt.Errorf("dns: no server given, and %s names no nameserver", path)
	}
	return net.JoinHostPort(cc.Servers[0], cc.Port), nil
}

// shorten bounds an attribute: a long TXT answer is for expectations, not
// for the run page.
func shorten(s string) string {
	if len(s) > 200 {
		return strings.ToValidUTF8(s[:200], "") + "…"
	}
	return s
}
