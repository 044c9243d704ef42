package main

import (
	"bufio"
	"encoding/json"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// extraBytesServer answers every request with a body and then bytes past
// its Content-Length that carry secret: Go's HTTP client reports those
// through the standard library's logger ("Unsolicited response received on
// idle HTTP channel starting with ..."), quoting them.
func extraBytesServer(t *testing.T, secret string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					req.Body.Close()
					c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" +
						"HTTP/1.1 200 OK\r\nX-Leak: " + secret + "\r\n\r\n"))
					time.Sleep(200 * time.Millisecond) // keep the connection while the client reads
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// TestOnceStdLogIsJSONAndRedacted (issue 13, item 2): the client's message
// about bytes after the body reaches stderr as a JSON record, redacted.
func TestOnceStdLogIsJSONAndRedacted(t *testing.T) {
	const pw = "Std-Log-LeakCanary-42"
	url := extraBytesServer(t, pw)
	// The next step, on another server, keeps the run (and the idle
	// connection the client complains about) alive for a while.
	slow := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { time.Sleep(300 * time.Millisecond) }))
	defer slow.Close()
	dir := writeFiles(t, map[string]string{
		"probes.yaml": "secrets:\n  PW: {env: STDLOG_PW}\nflows: [flows/f.yaml]\n",
		"flows/f.yaml": `name: f
every: 1m
steps:
  - {name: a, request: {url: "` + url + `/a", headers: {X-Key: "{{secret:PW}}"}}}
  - {name: b, request: {url: "` + slow.URL + `/b"}}
`,
	})
	t.Setenv("STDLOG_PW", pw)
	w, flags := log.Writer(), log.Flags()
	defer func() { log.SetOutput(w); log.SetFlags(flags) }()
	code, stdout, stderr := invoke("once", "--config", dir+"/probes.yaml")
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "Unsolicited response") {
		t.Fatalf("the client never complained (nothing proven): stderr %q", stderr)
	}
	if strings.Contains(stderr+stdout, pw) {
		t.Errorf("secret on stderr: %s", stderr)
	}
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		var rec struct{ Msg, Text string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Msg != "go_log" {
			t.Errorf("not a JSON go_log record: %q", line)
		}
	}
}
