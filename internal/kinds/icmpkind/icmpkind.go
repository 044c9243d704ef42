// Package icmpkind is the icmp step kind: echo requests (ping) to a host,
// with round-trip times and loss as operands: loss == 0, rtt < 50ms. It
// uses the kernel's unprivileged datagram ICMP sockets where
// net.ipv4.ping_group_range lets the prober's group in, and raw sockets
// (CAP_NET_RAW) where it does not.
package icmpkind

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"net"
	"syscall"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/prober-dev/prober/internal/assert"
	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/runner"
	"github.com/prober-dev/prober/internal/template"
)

// NotPermitted is the message of a step whose socket the kernel refused.
const NotPermitted = "icmp not permitted: set net.ipv4.ping_group_range or grant CAP_NET_RAW"

// DefaultInterval is the time between two echo requests of a step.
const DefaultInterval = 100 * time.Millisecond

// MaxCount bounds the echo requests of one step.
const MaxCount = 100

// Kind is the icmp step kind, for config.Options.StepKinds.
type Kind struct {
	// Listen opens an ICMP socket as icmp.ListenPacket does (the default,
	// when nil): tests inject the kernel's refusal through it.
	Listen func(network, address string) (net.PacketConn, error)
}

// Name implements config.StepKind.
func (Kind) Name() string { return "icmp" }

// Keys implements config.StepKind.
func (Kind) Keys() []string { return []string{"host", "count", "interval"} }

// Operands implements config.StepKind.
func (Kind) Operands() assert.Operands { return Operands }

// Builtins implements config.StepKind: duration only.
func (Kind) Builtins() assert.Source { return 0 }

// Operands are what icmp steps' expectations and captures read (besides
// duration).
var Operands = assert.Operands{
	"rtt":      assert.DurationOperand, // the mean round trip of the replies
	"rtt.min":  assert.DurationOperand,
	"rtt.max":  assert.DurationOperand,
	"sent":     assert.NumberOperand,
	"received": assert.NumberOperand,
	"loss":     assert.NumberOperand, // 0..1: the share of requests without a reply
}

// Spec is a decoded icmp: block; it runs as a runner.Executor.
type Spec struct {
	Host     *template.Template
	Count    int
	Interval time.Duration

	listen func(network, address string) (net.PacketConn, error)
	// step is the step being decoded: its expectations, set after the
	// block, say whether the flow checks loss itself.
	step *config.Step
}

// Decode implements config.StepKind.
func (k Kind) Decode(b *config.StepBlock) any {
	s := &Spec{Count: 1, Interval: DefaultInterval, listen: k.Listen, step: b.Step()}
	if s.listen == nil {
		s.listen = func(network, address string) (net.PacketConn, error) { return icmp.ListenPacket(network, address) }
	}
	if !b.Has("host") {
		b.Errorf("", "icmp needs a host (a name or an IP address)")
	} else if t, ok := b.Template("host", "a host name or IP address"); ok {
		if t.IsLiteral() && (t.String() == "" || net.ParseIP(t.String()) == nil && !validHostName(t.String())) {
			b.Errorf("host", "host %q is not a host name or IP address", t.String())
		}
		s.Host = t
	}
	if n, ok := b.Int("count", 1, MaxCount); ok {
		s.Count = int(n)
	}
	if d, ok := b.Duration("interval"); ok {
		s.Interval = d
	}
	// The requests are sent within the step's timeout, with time left for
	// the last reply.
	if spread := time.Duration(s.Count-1) * s.Interval; spread >= b.Step().Timeout {
		key := "count"
		if b.Has("interval") {
			key = "interval"
		}
		b.Errorf(key, "%d echo requests %s apart take %s, not less than the step timeout %s", s.Count, s.Interval, spread, b.Step().Timeout)
	}
	return s
}

// validHostName accepts what a resolver might: labels of letters, digits,
// hyphens and underscores.
func validHostName(h string) bool {
	if len(h) > 253 {
		return false
	}
	label := 0
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c == '.':
			if label == 0 {
				return false
			}
			label = 0
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			label++
			if label > 63 {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// Execute implements runner.Executor.
func (s *Spec) Execute(ctx context.Context, x *runner.Exchange) (result.Class, string) {
	host, err := x.Expand(s.Host)
	if err != nil {
		return x.Classify(err, runner.Phase{})
	}
	x.Target("icmp://" + host)
	tm := x.Timings()
	ip := net.ParseIP(host)
	if ip == nil {
		t0 := time.Now()
		addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
		if err != nil {
			return x.Classify(err, runner.Phase{})
		}
		tm.DNS = time.Since(t0)
		ip = pick(addrs)
	}
	x.Attr("ip", ip.String())
	conn, p, err := s.open(ip)
	if err != nil {
		if notPermitted(err) {
			return result.Request, NotPermitted
		}
		return result.Request, "icmp: " + err.Error()
	}
	defer conn.Close()
	x.Attr("socket", p.socket)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	st, err := s.ping(ctx, x, conn, p, ip)
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return x.Classify(fmt.Errorf("icmp echo to %s: %w", ip, err), runner.Phase{Connected: true, Sent: st.sent > 0})
	}
	return s.record(ctx, x, st)
}

// pick prefers an IPv4 address, as ping does.
func pick(addrs []net.IPAddr) net.IP {
	for _, a := range addrs {
		if a.IP.To4() != nil {
			return a.IP
		}
	}
	return addrs[0].IP
}

// proto is how one address family and socket type speak ICMP.
type proto struct {
	number     int // the IANA protocol number, for icmp.ParseMessage
	echo, repl icmp.Type
	raw        bool // a raw socket: replies to others arrive too
	socket     string
}

// open opens a datagram ICMP socket, or a raw one where the kernel refuses
// the datagram one.
func (s *Spec) open(ip net.IP) (net.PacketConn, proto, error) {
	v4 := ip.To4() != nil
	p := proto{number: 1, echo: ipv4.ICMPTypeEcho, repl: ipv4.ICMPTypeEchoReply, socket: "datagram"}
	dgram, raw, wildcard := "udp4", "ip4:icmp", "0.0.0.0"
	if !v4 {
		p = proto{number: 58, echo: ipv6.ICMPTypeEchoRequest, repl: ipv6.ICMPTypeEchoReply, socket: "datagram"}
		dgram, raw, wildcard = "udp6", "ip6:ipv6-icmp", "::"
	}
	conn, err := s.listen(dgram, wildcard)
	if err == nil || !notPermitted(err) {
		return conn, p, err
	}
	conn, rerr := s.listen(raw, wildcard)
	if rerr != nil {
		if notPermitted(rerr) {
			return nil, p, err // the datagram socket's refusal says it best
		}
		return nil, p, rerr
	}
	p.raw, p.socket = true, "raw"
	return conn, p, nil
}

// notPermitted says whether the kernel refused an ICMP socket for lack of
// permission (ping_group_range, or no CAP_NET_RAW).
func notPermitted(err error) bool {
	return errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM)
}

// stats are what came back.
type stats struct {
	sent, received        int
	total, fastest, worst time.Duration
	first                 time.Time
}

// ping sends the echo requests Interval apart and reads the replies until
// all came back or the step's context ends. An error is one of the socket
// (a lost reply is not one).
func (s *Spec) ping(ctx context.Context, x *runner.Exchange, conn net.PacketConn, p proto, ip net.IP) (stats, error) {
	var st stats
	var dst net.Addr = &net.UDPAddr{IP: ip}
	if p.raw {
		dst = &net.IPAddr{IP: ip}
	}
	// A datagram socket's identifier is its port, set by the kernel, which
	// hands it only its own replies; a raw socket sees every reply, so
	// ours carry a random identifier and a token.
	id := mrand.IntN(math.MaxUint16)
	token := make([]byte, 16)
	_, _ = rand.Read(token)
	sentAt := make([]time.Time, s.Count)
	got := make([]bool, s.Count)
	buf := make([]byte, 1500)
	next := time.Now()
	for st.received < s.Count {
		if st.sent < s.Count && !time.Now().Before(next) {
			seq := st.sent
			b, err := (&icmp.Message{Type: p.echo, Body: &icmp.Echo{ID: id, Seq: seq, Data: token}}).Marshal(nil)
			if err != nil {
				return st, err
			}
			sentAt[seq] = time.Now()
			if _, err := conn.WriteTo(b, dst); err != nil {
				return st, err
			}
			st.sent++
			next = sentAt[seq].Add(s.Interval)
		}
		wait := time.Time{} // the step's deadline (set by AfterFunc)
		if dl, ok := ctx.Deadline(); ok {
			wait = dl
		}
		if st.sent < s.Count && (wait.IsZero() || next.Before(wait)) {
			wait = next
		}
		_ = conn.SetReadDeadline(wait)
		n, peer, err := conn.ReadFrom(buf)
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				return st, err
			}
			if st.sent < s.Count && wait.Equal(next) && ctx.Err() == nil {
				continue // time for the next request
			}
			return st, nil // the step's time is up: the replies still out are lost
		}
		m, err := icmp.ParseMessage(p.number, buf[:n])
		if err != nil || m.Type != p.repl {
			continue
		}
		echo, ok := m.Body.(*icmp.Echo)
		if !ok || echo.Seq < 0 || echo.Seq >= st.sent || got[echo.Seq] || !bytes.Equal(echo.Data, token) {
			continue
		}
		if p.raw && (echo.ID != id || !sameIP(peer, ip)) {
			continue
		}
		rtt := time.Since(sentAt[echo.Seq])
		got[echo.Seq] = true
		if st.received == 0 {
			st.first = time.Now()
			st.fastest, st.worst = rtt, rtt
			x.Timings().FirstByte = st.first.Sub(x.Started())
		}
		st.received++
		st.total += rtt
		st.fastest, st.worst = min(st.fastest, rtt), max(st.worst, rtt)
	}
	return st, nil
}

func sameIP(a net.Addr, ip net.IP) bool {
	switch a := a.(type) {
	case *net.IPAddr:
		return a.IP.Equal(ip)
	case *net.UDPAddr:
		return a.IP.Equal(ip)
	}
	return false
}

// record sets the operands and attributes. No reply at all fails the step
// (class timeout) unless an expectation reads loss, received or sent: a
// flow that expects a host to be unreachable says so.
func (s *Spec) record(ctx context.Context, x *runner.Exchange, st stats) (result.Class, string) {
	r := x.Response()
	loss := 1 - float64(st.received)/float64(st.sent)
	r.SetInt("sent", int64(st.sent))
	r.SetInt("received", int64(st.received))
	r.SetNumber("loss", loss)
	x.Attr("received", fmt.Sprintf("%d/%d", st.received, st.sent))
	if st.received > 0 {
		mean := st.total / time.Duration(st.received)
		r.SetDuration("rtt", mean)
		r.SetDuration("rtt.min", st.fastest)
		r.SetDuration("rtt.max", st.worst)
		x.Attr("rtt", mean.String())
		return "", ""
	}
	if s.lossChecked() {
		return "", ""
	}
	err := ctx.Err()
	if err == nil {
		err = context.DeadlineExceeded
	}
	class, msg := x.Classify(err, runner.Phase{Connected: true, Sent: true})
	return class, msg + fmt.Sprintf(" (%d echo requests sent)", st.sent)
}

// lossChecked says whether an expectation of the step (or of its until)
// reads what came back.
func (s *Spec) lossChecked() bool {
	exps := append([]*assert.Expectation(nil), s.step.Expect...)
	if s.step.Until != nil {
		exps = append(exps, s.step.Until.Expect...)
	}
	for _, e := range exps {
		if e.Reads("loss") || e.Reads("received") || e.Reads("sent") {
			return true
		}
	}
	return false
}
