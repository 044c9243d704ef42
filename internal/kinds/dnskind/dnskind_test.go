package dnskind_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"github.com/prober-dev/prober/internal/kinds/dnskind"
	"github.com/prober-dev/prober/internal/kinds/kindtest"
	"github.com/prober-dev/prober/internal/result"
)

// zone is what the test server answers, as zone-file lines.
var zone = []string{
	"a.test. 300 IN A 192.0.2.1",
	"a.test. 60 IN A 192.0.2.2",
	"v6.test. 300 IN AAAA 2001:db8::1",
	"mail.test. 300 IN MX 10 mx1.test.",
	"mail.test. 300 IN MX 20 mx2.test.",
	"mx1.test. 300 IN A 192.0.2.25",
	`txt.test. 300 IN TXT "v=spf1 " "-all"`,
	"_sip._tcp.test. 300 IN SRV 10 5 5060 sip.test.",
	"www.test. 120 IN CNAME a.test.",
	"test. 300 IN NS ns1.test.",
	"test. 300 IN SOA ns1.test. hostmaster.test. 2026120701 7200 3600 1209600 300",
}

// server is a DNS server on loopback (UDP and TCP on the same port),
// counting the queries each transport got.
type server struct {
	addr string
	mu   sync.Mutex
	seen map[string]int // "udp"/"tcp" -> queries
}

func (s *server) count(network string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[network]
}

func serve(t *testing.T) *server {
	t.Helper()
	rrs := map[string][]dns.RR{}
	for _, line := range zone {
		rr, err := dns.NewRR(line)
		if err != nil {
			t.Fatal(err)
		}
		rrs[rr.Header().Name] = append(rrs[rr.Header().Name], rr)
	}
	for i := range 60 { // too long for 1232 bytes over UDP
		rr, _ := dns.NewRR(fmt.Sprintf(`big.test. 300 IN TXT "record %02d %s"`, i, strings.Repeat("x", 40)))
		rrs["big.test."] = append(rrs["big.test."], rr)
	}
	s := &server{seen: map[string]int{}}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		network := w.RemoteAddr().Network()
		s.mu.Lock()
		s.seen[network]++
		s.mu.Unlock()
		q := req.Question[0]
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = strings.HasSuffix(q.Name, ".test.") || q.Name == "test."
		switch {
		case q.Name == "broken.test.":
			m.Rcode = dns.RcodeServerFailure
		case q.Name == "norec.test." && req.RecursionDesired:
			m.Rcode = dns.RcodeRefused
		case q.Name == "norec.test.":
		case len(rrs[q.Name]) == 0:
			m.Rcode = dns.RcodeNameError
		}
		for _, rr := range rrs[q.Name] {
			if rr.Header().Rrtype == q.Qtype || rr.Header().Rrtype == dns.TypeCNAME {
				m.Answer = append(m.Answer, rr)
			}
			if cn, ok := rr.(*dns.CNAME); ok && q.Qtype != dns.TypeCNAME {
				m.Answer = append(m.Answer, rrs[cn.Target]...)
			}
		}
		if network == "udp" {
			size := dns.MinMsgSize
			if o := req.IsEdns0(); o != nil {
				size = int(o.UDPSize())
			}
			m.Truncate(size)
		}
		_ = w.WriteMsg(m)
	})
	// The same port for UDP and TCP: a free UDP port's TCP twin may be
	// taken by another test's connection, so try a few.
	var pc net.PacketConn
	var ln net.Listener
	for try := 0; ; try++ {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		if try == 20 {
			t.Fatal(err)
		}
	}
	s.addr = pc.LocalAddr().String()
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: handler}, {Listener: ln, Handler: handler}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = srv.ActivateAndServe()
		}()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown(); <-done })
	}
	return s
}

// silent is a UDP socket that reads queries and never answers.
func silent(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().String()
}

// closedUDP is a loopback UDP port nothing listens on.
func closedUDP(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

func flow(block, extra string) string {
	return "name: f\nsteps:\n  - name: q\n    timeout: 500ms\n    dns: " + block + "\n" + extra
}

func TestDNSKind(t *testing.T) {
	srv := serve(t)
	at := `, server: "` + srv.addr + `"}`
	for _, tc := range []struct {
		name, block, extra string
		class              result.Class
		msg                string
		attrs              map[string]string // attributes of the step's result
		udp, tcp           int               // queries the server got per transport (-1: do not check)
	}{
		{"A", `{name: a.test` + at, "    expect: ['answers contains \"192.0.2.2\"', answers.count == 2, ttl == 60s, authoritative, 'rcode == \"NOERROR\"']\n",
			result.OK, "", map[string]string{"rcode": "NOERROR", "answers": "192.0.2.1, 192.0.2.2"}, 1, 0},
		{"A over tcp", `{name: a.test, transport: tcp` + at, "    expect: ['answers matches \"(?m)^192\\\\.0\\\\.2\\\\.1$\"']\n",
			result.OK, "", nil, 0, 1},
		{"AAAA", `{name: v6.test, type: AAAA` + at, "    expect: ['answers == \"2001:db8::1\"']\n", result.OK, "", nil, 1, 0},
		{"MX", `{name: mail.test, type: mx` + at, "    expect: ['answers == \"10 mx1.test.\\n20 mx2.test.\"']\n", result.OK, "", nil, -1, -1},
		{"TXT joined", `{name: txt.test, type: TXT` + at, "    expect: ['answers == \"v=spf1 -all\"']\n", result.OK, "", nil, -1, -1},
		{"SRV", `{name: _sip._tcp.test, type: SRV` + at, "    expect: ['answers == \"10 5 5060 sip.test.\"']\n", result.OK, "", nil, -1, -1},
		{"CNAME", `{name: www.test, type: CNAME` + at, "    expect: ['answers == \"a.test.\"', answers.count == 1]\n", result.OK, "", nil, -1, -1},
		{"A through a CNAME: answers are the A records, ttl the chain's least", `{name: www.test` + at,
			"    expect: ['answers == \"192.0.2.1\\n192.0.2.2\"', ttl == 60s]\n", result.OK, "", nil, -1, -1},
		{"NS", `{name: test, type: NS` + at, "    expect: ['answers == \"ns1.test.\"']\n", result.OK, "", nil, -1, -1},
		{"SOA", `{name: test., type: SOA` + at, "    expect: ['answers contains \"hostmaster.test. 2026120701 \"']\n", result.OK, "", nil, -1, -1},
		{"a failed expectation", `{name: a.test` + at, "    expect: 'answers contains \"198.51.100.7\"'\n",
			result.Assertion, `answers contains "198.51.100.7": got "192.0.2.1\n192.0.2.2"`, nil, -1, -1},
		{"NXDOMAIN fails by default", `{name: nosuch.test` + at, "", result.Assertion,
			`rcode == "NOERROR" (the default when no expectation reads rcode): got "NXDOMAIN"`, map[string]string{"rcode": "NXDOMAIN"}, -1, -1},
		{"NXDOMAIN expected", `{name: nosuch.test` + at, "    expect: ['rcode == \"NXDOMAIN\"', answers.count == 0, '!exists(match(answers, \".\"))']\n", result.OK, "", nil, -1, -1},
		{"SERVFAIL", `{name: broken.test` + at, "", result.Assertion, `got "SERVFAIL"`, nil, -1, -1},
		{"SERVFAIL against an expectation", `{name: broken.test` + at, "    expect: 'rcode in [\"NOERROR\", \"NXDOMAIN\"]'\n", result.Assertion, `got "SERVFAIL"`, nil, -1, -1},
		{"ttl missing without answers", `{name: nosuch.test` + at, "    expect: ['rcode == \"NXDOMAIN\"', ttl > 1s]\n", result.Assertion, "ttl > 1s: got nothing", nil, -1, -1},
		{"recursion off", `{name: norec.test, recursion: false` + at, "", result.OK, "", nil, -1, -1},
		{"recursion on (default)", `{name: norec.test` + at, "", result.Assertion, `got "REFUSED"`, nil, -1, -1},
		{"truncated over udp, asked again over tcp", `{name: big.test, type: TXT` + at, "    expect: [answers.count == 60]\n",
			result.OK, "", map[string]string{"transport": "tcp (udp answer truncated)"}, 1, 1},
		{"capture", `{name: mail.test, type: MX` + at, "    capture: {mx: 'match(answers, \"^\\\\d+ (\\\\S+)\")'}\n", result.OK, "", nil, -1, -1},
		{"never answers", `{name: a.test, server: "` + silent(t) + `"}`, "", result.Timeout, "no reply within the step timeout (500ms)", nil, -1, -1},
		{"refused", `{name: a.test, server: "` + closedUDP(t) + `"}`, "", result.ConnectRefused, "connection refused", nil, -1, -1},
		{"a server name that does not resolve", `{name: a.test, server: "nosuch.invalid"}`, "", result.DNS, "dns: ", nil, -1, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			udp0, tcp0 := srv.count("udp"), srv.count("tcp")
			r := kindtest.Run(t, "", flow(tc.block, tc.extra), dnskind.Kind{})
			s := r.Steps[0]
			if s.Class != tc.class {
				t.Fatalf("class %s, want %s (%v)", s.Class, tc.class, s.Failures)
			}
			if tc.msg != "" && !strings.Contains(s.Message(), tc.msg) {
				t.Errorf("message %q, want it to contain %q", s.Message(), tc.msg)
			}
			for k, v := range tc.attrs {
				if s.Attr(k) != v {
					t.Errorf("attr %s = %q, want %q (%v)", k, s.Attr(k), v, s.Attrs)
				}
			}
			if s.Kind != "dns" || !strings.HasPrefix(s.URL, "dns://") {
				t.Errorf("kind %q url %q", s.Kind, s.URL)
			}
			if tc.udp >= 0 && srv.count("udp")-udp0 != tc.udp || tc.tcp >= 0 && srv.count("tcp")-tcp0 != tc.tcp {
				t.Errorf("queries: udp %d tcp %d, want %d and %d", srv.count("udp")-udp0, srv.count("tcp")-tcp0, tc.udp, tc.tcp)
			}
			if tc.class == result.OK && (s.Timings.FirstByte <= 0 || s.Duration <= 0) {
				t.Errorf("no timings: %+v %s", s.Timings, s.Duration)
			}
		})
	}
}

// TestDNSKindFlow: a captured answer feeds the next query, names and servers
// come from variables, and until polls a dns step.
func TestDNSKindFlow(t *testing.T) {
	srv := serve(t)
	r := kindtest.Run(t, "", "name: f\nvars: {ns: \""+srv.addr+"\", domain: test}\nsteps:\n"+
		"  - name: mx\n    dns: {name: \"mail.{{domain}}\", type: MX, server: \"{{ns}}\"}\n    capture: {mx: 'match(answers, \"^10 (\\\\S+)\")'}\n"+
		"  - name: mx_addr\n    dns: {name: \"{{mx}}\", server: \"{{ns}}\"}\n    until: {expect: 'answers == \"192.0.2.25\"', within: 2s, interval: 100ms}\n",
		dnskind.Kind{})
	if !r.OK() {
		t.Fatalf("%s", r.Summary())
	}
	if got := r.Steps[1].URL; got != "dns://"+srv.addr+"/mx1.test.?type=A" {
		t.Errorf("url %q", got)
	}
}

// TestDNSKindDefaultServer: without server, the first nameserver of
// resolv.conf on port 53 is asked.
func TestDNSKindDefaultServer(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(conf, []byte("# test\nsearch example.com\nnameserver 127.0.0.9\nnameserver 127.0.0.10\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := kindtest.Run(t, "", flow("{name: a.test}", ""), dnskind.Kind{ResolvConf: conf})
	if got := r.Steps[0].URL; got != "dns://127.0.0.9:53/a.test?type=A" {
		t.Errorf("url %q, want the first nameserver of %s", got, conf)
	}
	empty := filepath.Join(dir, "empty.conf")
	if err := os.WriteFile(empty, []byte("search example.com\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = kindtest.Run(t, "", flow("{name: a.test}", ""), dnskind.Kind{ResolvConf: empty})
	if s := r.Steps[0]; s.Class != result.Request || !strings.Contains(s.Message(), "names no nameserver") {
		t.Errorf("class %s message %q", s.Class, s.Message())
	}
	r = kindtest.Run(t, "", flow("{name: a.test}", ""), dnskind.Kind{ResolvConf: filepath.Join(dir, "missing")})
	if s := r.Steps[0]; s.Class != result.Request || !strings.Contains(s.Message(), "no server given, and reading") {
		t.Errorf("class %s message %q", s.Class, s.Message())
	}
}

func TestDNSKindConfig(t *testing.T) {
	for _, tc := range []struct{ flow, want string }{
		{flow(`{type: A}`, ""), "f.yaml:5:10: dns needs a name"},
		{flow(`{name: "a..b"}`, ""), `f.yaml:5:17: name "a..b" is not a domain name`},
		{flow(`{name: a.test, type: PTR}`, ""), `f.yaml:5:31: type "PTR" is not one of A, AAAA, CNAME, MX, NS, SOA, SRV, TXT`},
		{flow(`{name: a.test, server: "a:b:c"}`, ""), `f.yaml:5:33: server "a:b:c" is not host:port`},
		{flow(`{name: a.test, transport: quic}`, ""), `f.yaml:5:36: transport "quic" is not udp or tcp`},
		{flow(`{name: a.test, recursion: maybe}`, ""), "f.yaml:5:36: expected true or false"},
		{flow(`{name: a.test, port: 53}`, ""), `f.yaml:5:25: unknown field "port"`},
		{flow(`{name: "{{nope}}"}`, ""), `f.yaml:5:18: undefined variable "nope"`},
		{flow(`{name: a.test}`, "    expect: status == 200\n"), "dns steps cannot read that: their operands are duration, answers, answers.count, authoritative, rcode, ttl"},
		{flow(`{name: a.test}`, "    expect: rcode == NOERROR\n"), `f.yaml:6:22: unknown operand "NOERROR" (strings need quotes: "NOERROR")`},
		{flow(`{name: a.test}`, "    expect: ttl > 60\n"), "f.yaml:6:19: type mismatch: ttl is a duration but 60 is a number"},
	} {
		_, err := kindtest.Load(t, "", tc.flow, dnskind.Kind{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("flow:\n%s\nerr %v\nwant %q", tc.flow, err, tc.want)
		}
	}
}
