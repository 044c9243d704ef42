package tcpkind_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/kinds"
	"github.com/prober-dev/prober/internal/kinds/kindtest"
	"github.com/prober-dev/prober/internal/kinds/tcpkind"
	"github.com/prober-dev/prober/internal/result"
)

// smtp greets, then answers EHLO; anything else is echoed in an error
// (as servers do: the test checks that a secret sent comes back redacted).
func smtp(c net.Conn) {
	fmt.Fprint(c, "220 mail.test ESMTP ready\r\n")
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if strings.HasPrefix(line, "EHLO") {
			fmt.Fprint(c, "250-mail.test\r\n250 SIZE 1000\r\n")
			continue
		}
		fmt.Fprintf(c, "500 unknown command %s", line)
	}
}

func flow(block string, extra string) string {
	return "name: f\nsteps:\n  - name: banner\n    timeout: 500ms\n    tcp: " + block + "\n" + extra
}

func TestTCPKind(t *testing.T) {
	mail := kindtest.ServeTCP(t, smtp)
	silent := kindtest.ServeTCP(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	closing := kindtest.ServeTCP(t, func(c net.Conn) { fmt.Fprint(c, "-ERR go away\r\n") })
	closed := kindtest.ClosedAddr(t)
	for _, tc := range []struct {
		name, block, extra string
		class              result.Class
		msg, reply         string
	}{
		{"connect only", `{address: "` + mail + `"}`, "", result.OK, "", ""},
		{"banner", `{address: "` + mail + `", reply: "^220 "}`, `    expect: ['body matches "ESMTP"', duration < 1s]` + "\n", result.OK, "", "220 mail.test ESMTP ready"},
		{"send and reply", `{address: "` + mail + `", send: "EHLO prober\r\n", reply: "(?m)^250 "}`,
			`    expect: 'match(body, "SIZE (\\d+)") == "1000"'` + "\n    capture: {size: 'match(body, \"SIZE (\\\\d+)\")'}\n", result.OK, "", "220 mail.test ESMTP ready"},
		{"a failed expectation", `{address: "` + mail + `", reply: "^220 "}`, `    expect: 'body contains "Postfix"'` + "\n", result.Assertion, `body contains "Postfix": got "220 mail.test`, ""},
		{"never answers", `{address: "` + silent + `", send: "PING\r\n", reply: "PONG"}`, "", result.Timeout, "no reply within the step timeout (500ms)", ""},
		{"closes without the reply", `{address: "` + closing + `", reply: "^\\+PONG"}`, "", result.Assertion, `reply "^\\+PONG" not seen (the connection closed): got "-ERR go away\r\n"`, "-ERR go away"},
		{"a secret sent and echoed", `{address: "` + mail + `", send: "AUTH {{secret:S}}\r\n", reply: "(?m)^500 .*\n"}`, `    expect: 'body !contains "500"'` + "\n", result.Assertion, `500 unknown command AUTH [secret:S]`, ""},
		{"refused", `{address: "` + closed + `"}`, "", result.ConnectRefused, "connection refused", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := kindtest.Run(t, "", flow(tc.block, tc.extra), tcpkind.Kind{})
			s := r.Steps[0]
			if s.Class != tc.class {
				t.Fatalf("class %s, want %s (%v)", s.Class, tc.class, s.Failures)
			}
			if tc.msg != "" && !strings.Contains(s.Message(), tc.msg) {
				t.Errorf("message %q, want it to contain %q", s.Message(), tc.msg)
			}
			if strings.Contains(s.Message(), "s3cr3t") {
				t.Errorf("message leaks the secret: %q", s.Message())
			}
			if tc.reply != "" && s.Attr("reply") != tc.reply {
				t.Errorf("reply attr %q, want %q", s.Attr("reply"), tc.reply)
			}
			if s.Kind != "tcp" || s.URL != "tcp://"+strings.TrimSuffix(strings.SplitN(tc.block, `"`, 3)[1], "") {
				t.Errorf("kind %q url %q", s.Kind, s.URL)
			}
			if tc.class == result.OK && s.Timings.Connect <= 0 {
				t.Errorf("no connect timing: %+v", s.Timings)
			}
		})
	}
}

// TestTCPKindMixed: a flow mixes kinds, and a tcp step's capture feeds the
// next step.
func TestTCPKindMixed(t *testing.T) {
	mail := kindtest.ServeTCP(t, smtp)
	r := kindtest.Run(t, "", "name: f\nvars: {addr: \""+mail+"\"}\nsteps:\n"+
		"  - name: greet\n    tcp: {address: \"{{addr}}\", reply: \"^220 \"}\n    capture: {host: 'match(body, \"^220 (\\\\S+)\")'}\n"+
		"  - name: ehlo\n    tcp: {address: \"{{addr}}\", send: \"EHLO {{host}}\\r\\n\", reply: \"(?m)^250 \"}\n    expect: 'body contains \"250-mail.test\"'\n",
		tcpkind.Kind{})
	if !r.OK() {
		t.Fatalf("%s", r.Summary())
	}
}

func TestTCPKindConfig(t *testing.T) {
	for _, tc := range []struct{ flow, want string }{
		{flow(`{reply: x}`, ""), "f.yaml:5:10: tcp needs an address"},
		{flow(`{address: "a"}`, ""), `f.yaml:5:20: address "a" is not host:port`},
		{flow(`{address: "a:1", reply: "("}`, ""), "f.yaml:5:34: reply: error parsing regexp"},
		{flow(`{address: "a:1"}`, "    expect: status == 200\n"), "tcp steps cannot read that: their operands are duration, body, json.<path>"},
	} {
		_, err := kindtest.Load(t, "", tc.flow, tcpkind.Kind{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("flow:\n%s\nerr %v\nwant %q", tc.flow, err, tc.want)
		}
	}
}

// smtpTLS is smtp with STARTTLS: after EHLO and STARTTLS it says 220 and
// hands the connection to TLS with cert.
func smtpTLS(cert tls.Certificate) func(net.Conn) {
	return func(c net.Conn) {
		fmt.Fprint(c, "220 mail.test ESMTP ready\r\n")
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			switch {
			case strings.HasPrefix(line, "EHLO"):
				fmt.Fprint(c, "250-mail.test\r\n250 STARTTLS\r\n")
			case strings.HasPrefix(line, "STARTTLS"):
				fmt.Fprint(c, "220 2.0.0 Ready to start TLS\r\n")
				tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
				if tc.Handshake() == nil {
					fmt.Fprint(tc, "220 mail.test ESMTP ready\r\n")
				}
				return
			default:
				fmt.Fprintf(c, "500 unknown command %s", line)
			}
		}
	}
}

// A tcp step upgrades with STARTTLS after the server's go-ahead, and reads
// the certificate as a tls step does (cert.* operands, class tls when it
// does not verify).
func TestTCPKindStartTLS(t *testing.T) {
	ca := kindtest.NewCA(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	notAfter := time.Now().Add(20 * 24 * time.Hour).Truncate(time.Second)
	good := kindtest.ServeTCP(t, smtpTLS(ca.Leaf(t, "mail.test", notAfter, "127.0.0.1")))
	selfSigned := kindtest.ServeTCP(t, smtpTLS((*kindtest.CA)(nil).Leaf(t, "mail.test", notAfter, "127.0.0.1")))
	noTLS := kindtest.ServeTCP(t, smtp)
	const send = `send: "EHLO prober\r\nSTARTTLS\r\n", reply: "(?m)^220 2\\.0\\.0 .*\r\n"`
	for _, tc := range []struct {
		name, block, extra string
		class              result.Class
		msg                string
	}{
		{"verified", `{address: "` + good + `", ` + send + `, starttls: {ca_file: ca.pem}}`,
			"    expect: [tls.verified, cert.expires_in > 336h, cert.expires_in < 504h, 'cert.subject contains \"mail.test\"']\n", result.OK, ""},
		{"not trusted", `{address: "` + selfSigned + `", ` + send + `, starttls: {ca_file: ca.pem}}`, "", result.TLS, "tls: x509: certificate signed by unknown authority"},
		{"not trusted, not verified", `{address: "` + selfSigned + `", ` + send + `, starttls: {verify: false}}`, "    expect: ['!tls.verified']\n", result.OK, ""},
		{"no go-ahead", `{address: "` + noTLS + `", ` + send + `, starttls: true}`, "", result.Timeout, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := kindtest.Run(t, dir, flow(tc.block, tc.extra), tcpkind.Kind{})
			s := r.Steps[0]
			if s.Class != tc.class || !strings.Contains(s.Message(), tc.msg) {
				t.Fatalf("class %s, message %q; want %s, %q", s.Class, s.Message(), tc.class, tc.msg)
			}
			if tc.class == result.OK || tc.class == result.TLS {
				if na := s.Attr("cert.not_after"); na != notAfter.UTC().Format(time.RFC3339) {
					t.Errorf("cert.not_after %q, want %s (attrs %v)", na, notAfter.UTC().Format(time.RFC3339), s.Attrs)
				}
			}
		})
	}
	if !(&tcpkind.Spec{StartTLS: &kinds.TLSClient{}}).MakesTLSHandshake() || (&tcpkind.Spec{}).MakesTLSHandshake() {
		t.Error("MakesTLSHandshake does not follow starttls")
	}
	_, err := kindtest.Load(t, "", flow(`{address: "a:1", starttls: true}`, ""), tcpkind.Kind{})
	if err == nil || !strings.Contains(err.Error(), "f.yaml:5:37: starttls needs a reply") {
		t.Errorf("starttls without a reply: %v", err)
	}
}
