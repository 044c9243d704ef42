package icmpkind_test

import (
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/prober-dev/prober/internal/kinds/icmpkind"
	"github.com/prober-dev/prober/internal/kinds/kindtest"
	"github.com/prober-dev/prober/internal/result"
)

// skipEnv lets a machine where this process may open no ICMP socket at all
// (no ping_group_range, no CAP_NET_RAW) skip the tests of real pings.
// Without it those tests fail there.
const skipEnv = "PROBER_TEST_ICMP_SKIP"

func flow(block, extra string) string {
	return "name: f\nsteps:\n  - name: ping\n    timeout: 2s\n    icmp: " + block + "\n" + extra
}

// realPing runs a flow that pings for real, failing (or skipping, under
// skipEnv) when the kernel refuses the socket.
func realPing(t *testing.T, k icmpkind.Kind, f string) *result.Step {
	t.Helper()
	r := kindtest.Run(t, "", f, k)
	s := r.Steps[0]
	if s.Class == result.Request && strings.Contains(s.Message(), "not permitted") {
		if os.Getenv(skipEnv) != "" {
			t.Skipf("%s (%s is set)", s.Message(), skipEnv)
		}
		t.Fatalf("%s: this test needs an ICMP socket (set %s=1 to skip it where none can be had)", s.Message(), skipEnv)
	}
	return &s
}

// TestICMPKindLoopback pings 127.0.0.1 and ::1 for real, through whichever
// socket the kernel allows (datagram, or raw for root).
func TestICMPKindLoopback(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "::1", "localhost"} {
		t.Run(host, func(t *testing.T) {
			if host == "::1" {
				if ln, err := net.Listen("tcp6", "[::1]:0"); err != nil {
					t.Skipf("no IPv6 loopback: %v", err)
				} else {
					ln.Close()
				}
			}
			s := realPing(t, icmpkind.Kind{}, flow(`{host: "`+host+`", count: 3, interval: 20ms}`,
				"    expect: [loss == 0, received == 3, sent == 3, rtt < 1s, rtt.min <= rtt.max, duration < 2s]\n    capture: {rtt: rtt}\n"))
			if s.Class != result.OK {
				t.Fatalf("class %s: %v", s.Class, s.Failures)
			}
			if s.Kind != "icmp" || s.URL != "icmp://"+host || s.Attr("received") != "3/3" || s.Attr("rtt") == "" {
				t.Errorf("kind %q url %q attrs %v", s.Kind, s.URL, s.Attrs)
			}
			if sock := s.Attr("socket"); sock != "datagram" && sock != "raw" {
				t.Errorf("socket %q", sock)
			}
			if s.Timings.FirstByte <= 0 {
				t.Errorf("no timing of the first reply: %+v", s.Timings)
			}
		})
	}
}

// refuse is a Listen that refuses the networks in no (with errno) and opens
// the others for real.
func refuse(errno syscall.Errno, no ...string) func(network, address string) (net.PacketConn, error) {
	return func(network, address string) (net.PacketConn, error) {
		for _, n := range no {
			if n == network {
				return nil, os.NewSyscallError("socket", errno)
			}
		}
		return icmp.ListenPacket(network, address)
	}
}

// TestICMPKindRawFallback: where the kernel refuses a datagram socket
// (ping_group_range), a raw one (CAP_NET_RAW: root here) does the job.
func TestICMPKindRawFallback(t *testing.T) {
	s := realPing(t, icmpkind.Kind{Listen: refuse(syscall.EACCES, "udp4", "udp6")}, flow(`{host: 127.0.0.1, count: 2, interval: 10ms}`, "    expect: loss == 0\n"))
	if s.Class != result.OK || s.Attr("socket") != "raw" {
		t.Fatalf("class %s socket %q: %v", s.Class, s.Attr("socket"), s.Failures)
	}
}

// TestICMPKindNotPermitted: the kernel's refusal is class request with a
// message that says what to change.
func TestICMPKindNotPermitted(t *testing.T) {
	for _, tc := range []struct {
		name   string
		listen func(network, address string) (net.PacketConn, error)
		msg    string
	}{
		{"ping_group_range and no CAP_NET_RAW", refuse(syscall.EACCES, "udp4", "ip4:icmp"), icmpkind.NotPermitted},
		{"EPERM", refuse(syscall.EPERM, "udp4", "ip4:icmp"), icmpkind.NotPermitted},
		{"datagram refused, raw fails otherwise", func(network, address string) (net.PacketConn, error) {
			if network == "udp4" {
				return nil, os.NewSyscallError("socket", syscall.EACCES)
			}
			return nil, os.NewSyscallError("socket", syscall.EMFILE)
		}, "icmp: socket: too many open files"},
		{"another error", refuse(syscall.EAFNOSUPPORT, "udp4"), "icmp: socket: address family not supported by protocol"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := kindtest.Run(t, "", flow(`{host: 127.0.0.1}`, ""), icmpkind.Kind{Listen: tc.listen})
			s := r.Steps[0]
			if s.Class != result.Request || s.Message() != tc.msg {
				t.Errorf("class %s message %q, want request %q", s.Class, s.Message(), tc.msg)
			}
			if s.Attempts != 1 {
				t.Errorf("%d attempts: a refused socket is not retried", s.Attempts)
			}
		})
	}
}

// lossy is a datagram ICMP socket in a test's hands: it answers the echo
// requests whose sequence number answer says, from a loopback UDP socket
// to itself, and loses the others.
type lossy struct {
	net.PacketConn // a loopback UDP socket
	answer         func(seq int) bool
}

func (c *lossy) WriteTo(b []byte, dst net.Addr) (int, error) {
	m, err := icmp.ParseMessage(1, b)
	if err != nil {
		return 0, err
	}
	echo := m.Body.(*icmp.Echo)
	if c.answer(echo.Seq) {
		reply, _ := (&icmp.Message{Type: ipv4.ICMPTypeEchoReply, Body: echo}).Marshal(nil)
		if _, err := c.PacketConn.WriteTo(reply, c.LocalAddr()); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}

func lossyKind(answer func(seq int) bool) icmpkind.Kind {
	return icmpkind.Kind{Listen: func(network, address string) (net.PacketConn, error) {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		return &lossy{PacketConn: pc, answer: answer}, nil
	}}
}

func TestICMPKindLoss(t *testing.T) {
	even := func(seq int) bool { return seq%2 == 0 }
	none := func(int) bool { return false }
	for _, tc := range []struct {
		name, block, extra string
		answer             func(int) bool
		class              result.Class
		msg                string
	}{
		{"half lost, no expectation: some replies pass", `{host: 127.0.0.1, count: 4, interval: 10ms}`, "", even, result.OK, ""},
		{"half lost, checked", `{host: 127.0.0.1, count: 4, interval: 10ms}`, "    expect: [loss == 0.5, received == 2]\n", even, result.OK, ""},
		{"half lost, too much", `{host: 127.0.0.1, count: 4, interval: 10ms}`, "    expect: loss < 0.25\n", even, result.Assertion, "loss < 0.25: got 0.5"},
		{"all lost: timeout", `{host: 127.0.0.1, count: 2, interval: 10ms}`, "", none, result.Timeout,
			"no reply within the step timeout (300ms) (2 echo requests sent)"},
		{"all lost, expected", `{host: 127.0.0.1, count: 2, interval: 10ms}`, "    expect: loss == 1\n", none, result.OK, ""},
		{"all lost, rtt read", `{host: 127.0.0.1, count: 2, interval: 10ms}`, "    expect: [received == 0, rtt < 1s]\n", none, result.Assertion, "rtt < 1s: got nothing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := strings.Replace(flow(tc.block, tc.extra), "timeout: 2s", "timeout: 300ms", 1)
			r := kindtest.Run(t, "", f, lossyKind(tc.answer))
			s := r.Steps[0]
			if s.Class != tc.class {
				t.Fatalf("class %s, want %s (%v)", s.Class, tc.class, s.Failures)
			}
			if tc.msg != "" && !strings.Contains(s.Message(), tc.msg) {
				t.Errorf("message %q, want it to contain %q", s.Message(), tc.msg)
			}
		})
	}
}

func TestICMPKindUnresolvable(t *testing.T) {
	r := kindtest.Run(t, "", flow(`{host: nosuch.invalid}`, ""), icmpkind.Kind{})
	if s := r.Steps[0]; s.Class != result.DNS {
		t.Errorf("class %s (%s), want dns", s.Class, s.Message())
	}
}

func TestICMPKindConfig(t *testing.T) {
	for _, tc := range []struct{ flow, want string }{
		{flow(`{count: 2}`, ""), "f.yaml:5:11: icmp needs a host"},
		{flow(`{host: "a b"}`, ""), `f.yaml:5:18: host "a b" is not a host name or IP address`},
		{flow(`{host: a, count: 0}`, ""), "f.yaml:5:28: count must be between 1 and 100, got 0"},
		{flow(`{host: a, count: many}`, ""), `f.yaml:5:28: expected an integer, got "many"`},
		{flow(`{host: a, count: 30}`, ""), "f.yaml:5:28: 30 echo requests 100ms apart take 2.9s, not less than the step timeout 2s"},
		{flow(`{host: a, count: 3, interval: 1s}`, ""), "f.yaml:5:41: 3 echo requests 1s apart take 2s, not less than the step timeout 2s"},
		{flow(`{host: a, interval: -1s}`, ""), "f.yaml:5:31: interval must be positive, got -1s"},
		{flow(`{host: a, size: 56}`, ""), `f.yaml:5:21: unknown field "size" in icmp`},
		{flow(`{host: "{{nope}}"}`, ""), `f.yaml:5:19: undefined variable "nope"`},
		{flow(`{host: a}`, "    expect: loss < 1%\n"), `f.yaml:6:21: unexpected "%" after loss < 1`},
		{flow(`{host: a}`, "    expect: body contains \"x\"\n"), "icmp steps cannot read that: their operands are duration, loss, received, rtt, rtt.max, rtt.min, sent"},
	} {
		_, err := kindtest.Load(t, "", tc.flow, icmpkind.Kind{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("flow:\n%s\nerr %v\nwant %q", tc.flow, err, tc.want)
		}
	}
}
