package email

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// smtpd is a strict SMTP server on loopback, written for these tests
// rather than taken from a module: it checks the wire itself (CRLF line
// ends, dot-stuffed lines, EHLO again after STARTTLS, no AUTH and no mail
// before TLS when TLS is offered, AUTH before MAIL when required), which a
// server library parses away, and it needs no dependency in go.mod. It
// speaks EHLO, STARTTLS (with a certificate the test made), AUTH PLAIN,
// MAIL, RCPT, DATA, RSET, NOOP and QUIT, and answers anything else 500
// and fails the test.
type smtpd struct {
	t        *testing.T
	ln       net.Listener
	addr     string
	cert     tls.Certificate
	pool     *x509.CertPool
	implicit bool // TLS from the first byte
	startTLS bool // offer STARTTLS
	user     string
	password string // "": AUTH not offered nor required

	mu     sync.Mutex
	mails  []received
	reply  map[string]string // command (or "greeting") -> a fault reply, once
	refuse map[string]string // recipient -> RCPT reply
	log    []string          // commands, AUTH's argument masked
	authOK int               // successful logins
}

// received is one accepted mail.
type received struct {
	From    string
	To      []string
	Wire    string // the DATA as sent, dot-stuffed, up to the final "."
	Data    string // unstuffed
	TLS     bool
	Authed  bool
	BadLine string // a line not ending in CRLF, or too long
}

func newSMTPD(t *testing.T, configure func(s *smtpd)) *smtpd {
	t.Helper()
	s := &smtpd{t: t, startTLS: true, reply: map[string]string{}, refuse: map[string]string{}}
	s.cert, s.pool = testCert(t)
	if configure != nil {
		configure(s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.ln, s.addr = ln, ln.Addr().String()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); s.serve(c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return s
}

// testCert makes a self-signed certificate for 127.0.0.1 and the pool
// that trusts it.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "smtp test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func (s *smtpd) set(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
}

func (s *smtpd) got() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.mails...)
}

func (s *smtpd) commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

// fault returns the injected reply for cmd, once.
func (s *smtpd) fault(cmd string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.reply[cmd]
	delete(s.reply, cmd)
	return r
}

func (s *smtpd) serve(raw net.Conn) {
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
	conn := raw
	isTLS := false
	if s.implicit {
		tc := tls.Server(raw, &tls.Config{Certificates: []tls.Certificate{s.cert}})
		if err := tc.Handshake(); err != nil {
			return // the client's verdict on our certificate
		}
		conn, isTLS = tc, true
	}
	r := bufio.NewReader(conn)
	w := func(format string, args ...any) { fmt.Fprintf(conn, format+"\r\n", args...) }
	fail := func(code int, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		s.t.Errorf("smtpd: %s", msg)
		w("%d %s", code, msg)
	}
	if f := s.fault("greeting"); f != "" {
		w("%s", f)
		return
	}
	w("220 smtp.test ESMTP fake")
	var (
		helo, authed bool
		from         string
		to           []string
	)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if !strings.HasSuffix(line, "\r\n") {
			fail(500, "command line without CRLF: %q", line)
			return
		}
		line = strings.TrimSuffix(line, "\r\n")
		verb, arg, _ := strings.Cut(line, " ")
		verb = strings.ToUpper(verb)
		logged := line
		if verb == "AUTH" {
			logged = "AUTH " + strings.Fields(arg + " x")[0] + " ***"
		}
		s.set(func() { s.log = append(s.log, logged) })
		if f := s.fault(verb); f != "" {
			w("%s", f)
			if strings.HasPrefix(f, "421") {
				return
			}
			continue
		}
		switch verb {
		case "EHLO":
			if strings.TrimSpace(arg) == "" {
				fail(501, "EHLO without a domain")
				continue
			}
			helo, from, to = true, "", nil
			ext := []string{"smtp.test", "8BITMIME", "SIZE 10485760"}
			if s.startTLS && !isTLS {
				ext = append(ext, "STARTTLS")
			}
			if s.password != "" && (isTLS || !s.startTLS) {
				ext = append(ext, "AUTH PLAIN")
			}
			for i, e := range ext {
				sep := "-"
				if i == len(ext)-1 {
					sep = " "
				}
				w("250%s%s", sep, e)
			}
		case "STARTTLS":
			if !s.startTLS || isTLS {
				fail(502, "STARTTLS not offered")
				continue
			}
			w("220 2.0.0 ready")
			tc := tls.Server(conn, &tls.Config{Certificates: []tls.Certificate{s.cert}})
			if err := tc.Handshake(); err != nil {
				return
			}
			conn, isTLS, helo, authed = tc, true, false, false
			r = bufio.NewReader(conn)
		case "AUTH":
			mech, resp, _ := strings.Cut(arg, " ")
			switch {
			case !helo:
				fail(503, "AUTH before EHLO")
			case s.password == "":
				fail(502, "AUTH not offered")
			case s.startTLS && !isTLS:
				fail(538, "5.7.11 AUTH before STARTTLS: the password would cross in the clear")
			case strings.ToUpper(mech) != "PLAIN" || resp == "":
				fail(504, "want AUTH PLAIN with an initial response, got %q", mech)
			default:
				dec, err := base64.StdEncoding.DecodeString(resp)
				parts := strings.Split(string(dec), "\x00")
				if err != nil || len(parts) != 3 || parts[0] != "" && parts[0] != parts[1] || parts[1] != s.user || parts[2] != s.password {
					w("535 5.7.8 Authentication credentials invalid")
					continue
				}
				authed = true
				s.set(func() { s.authOK++ })
				w("235 2.7.0 Authentication successful")
			}
		case "MAIL":
			a, ok := path(arg, "FROM:")
			switch {
			case !helo:
				fail(503, "MAIL before EHLO")
			case s.startTLS && !isTLS:
				fail(530, "5.7.0 MAIL before STARTTLS")
			case s.password != "" && !authed:
				w("530 5.7.0 Authentication required")
			case !ok:
				fail(501, "bad MAIL %q", arg)
			default:
				from, to = a, nil
				w("250 2.1.0 OK")
			}
		case "RCPT":
			a, ok := path(arg, "TO:")
			switch {
			case from == "":
				fail(503, "RCPT before MAIL")
			case !ok:
				fail(501, "bad RCPT %q", arg)
			default:
				s.mu.Lock()
				rep := s.refuse[a]
				s.mu.Unlock()
				if rep != "" {
					w("%s", rep)
					continue
				}
				to = append(to, a)
				w("250 2.1.5 OK")
			}
		case "DATA":
			if len(to) == 0 {
				fail(503, "DATA without an accepted recipient")
				continue
			}
			w("354 end with <CRLF>.<CRLF>")
			m := received{From: from, To: to, TLS: isTLS, Authed: authed}
			var wire, data strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				wire.WriteString(l)
				if !strings.HasSuffix(l, "\r\n") || len(l) > 1000 {
					m.BadLine = l
				}
				if l == ".\r\n" {
					break
				}
				data.WriteString(strings.TrimPrefix(l, ".")) // un-stuff
			}
			m.Wire, m.Data = wire.String(), data.String()
			if f := s.fault("DATA-END"); f != "" {
				w("%s", f)
				continue
			}
			s.set(func() { s.mails = append(s.mails, m) })
			from, to = "", nil
			w("250 2.0.0 OK queued")
		case "RSET":
			from, to = "", nil
			w("250 2.0.0 OK")
		case "NOOP":
			w("250 2.0.0 OK")
		case "*":
			// net/smtp cancels a failed AUTH with "*" after the final
			// 535 (RFC 4954 has it only mid-exchange); servers answer it
			// as an unknown command, and so does this one, quietly.
			w("501 5.5.2 unrecognized command")
		case "QUIT":
			w("221 2.0.0 bye")
			return
		default:
			fail(500, "unknown command %q", line)
		}
	}
}

// path reads "FROM:<a@b> [params]".
func path(arg, prefix string) (string, bool) {
	if len(arg) < len(prefix) || !strings.EqualFold(arg[:len(prefix)], prefix) {
		return "", false
	}
	rest := strings.TrimSpace(arg[len(prefix):])
	if !strings.HasPrefix(rest, "<") {
		return "", false
	}
	end := strings.IndexByte(rest, '>')
	if end < 0 {
		return "", false
	}
	for _, p := range strings.Fields(rest[end+1:]) {
		if p != "BODY=8BITMIME" {
			return "", false
		}
	}
	return rest[1:end], true
}
