package e2e

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/result"
)

// TestSecretsHostileEcho (issue 13, items 1 and 2, and the short secret of
// item 6) runs the real binary against servers that turn the secrets
// against it: one echoes them back (in a header, Go-quoted by the failure
// message; as basic auth; after a padding that puts one across the 120-byte
// cut), one sends them in bytes after its Content-Length, which Go's HTTP
// client reports through the standard library's logger. Nothing of them
// may show in `once` (text, --json, --junit), the daemon's stdout and
// stderr, its pages and API.
func TestSecretsHostileEcho(t *testing.T) {
	secrets := map[string]string{
		"K":    `ab"cd&ef`,
		"PW":   "Pw0rd-LeakCanary",
		"LONG": "LeakCanary-0123456789abcde",
	}
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond) // the idle connection of the step before complains meanwhile
		w.Header().Set("X-Echo-Key", r.Header.Get("X-Key"))
		w.Header().Set("X-Echo-Auth", r.Header.Get("Authorization"))
		w.Header().Set("X-Long", strings.Repeat("x", 100)+r.Header.Get("X-Long"))
	}))
	defer echo.Close()
	extra := extraBytesServer(t, secrets["K"]+" "+secrets["PW"]+" "+secrets["LONG"])

	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "flows"), 0o755)
	os.WriteFile(filepath.Join(dir, "probes.yaml"), []byte(`secrets:
  K: {env: HOSTILE_K}
  PW: {env: HOSTILE_PW}
  LONG: {env: HOSTILE_LONG}
flows: [flows/hostile.yaml]
`), 0o644)
	os.WriteFile(filepath.Join(dir, "flows", "hostile.yaml"), []byte(`name: hostile
every: 2s
steps:
  - name: extra
    request: {url: "`+extra+`/x"}
  - name: echo
    request:
      url: "`+echo.URL+`/echo"
      headers: {X-Key: "{{secret:K}}", X-Long: "{{secret:LONG}}"}
      basic_auth: {user: u, password: "{{secret:PW}}"}
    expect:
      - header.X-Echo-Key == "nope"
      - header.X-Echo-Auth == "nope"
      - header.X-Long == "nope"
`), 0o644)
	cfg := filepath.Join(dir, "probes.yaml")
	env := []string{"HOSTILE_K=" + secrets["K"], "HOSTILE_PW=" + secrets["PW"], "HOSTILE_LONG=" + secrets["LONG"]}

	var outputs []string
	add := func(what, s string) { outputs = append(outputs, what+"\x00"+s) }
	junit := filepath.Join(t.TempDir(), "junit.xml")
	out, errOut, code := runCmd(t, env, "once", "--config", cfg, "--junit", junit)
	if code != 1 {
		t.Errorf("once: exit %d, want 1 (the echo step fails)\n%s\n%s", code, out, errOut)
	}
	add("once stdout", out)
	add("once stderr", errOut)
	add("junit", read(t, junit))
	out, errOut, _ = runCmd(t, env, "once", "--config", cfg, "--json")
	add("once --json", out)
	add("once --json stderr", errOut)

	addr := freeAddr(t)
	p := start(t, env, "run", "--config", cfg, "--listen", addr)
	base := "http://" + addr
	waitRun(t, base, "hostile", 30*time.Second, func(r *result.Run) bool { return r.FailedStep == "echo" })
	_, results := get(t, base+"/api/v1/results?limit=100")
	add("/api/v1/results", results)
	trace := regexp.MustCompile(`"trace_id":"([0-9a-f]{32})"`).FindStringSubmatch(results)[1]
	for _, path := range []string{"/", "/flows/hostile", "/runs/" + trace} {
		_, body := get(t, base+path)
		add(path, body)
	}
	time.Sleep(time.Second) // a few more runs, and their complaints
	p.stop(t, 30*time.Second)
	add("daemon stdout", read(t, p.stdout))
	add("daemon stderr", read(t, p.stderr))

	all := strings.Join(outputs, "\n")
	if !strings.Contains(all, "Unsolicited response") {
		t.Error("the client never complained about the extra bytes: item 2 not exercised")
	}
	if !strings.Contains(all, "[secret:K]") || !strings.Contains(all, "[secret:PW]") || !strings.Contains(all, "[secret:LONG]") {
		t.Error("a redaction marker is missing: an echo was not exercised")
	}
	for _, o := range outputs {
		what, text, _ := strings.Cut(o, "\x00")
		if what == "daemon stderr" || what == "once stderr" || what == "once --json stderr" {
			// The standard library's messages are JSON records too.
			for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
				if line != "" && !json.Valid([]byte(line)) {
					t.Errorf("%s: not JSON: %q", what, line)
				}
			}
		}
		for name, v := range secrets {
			if l := showsSecret(text, v); l != "" {
				t.Errorf("secret %s leaks in %s: %s", name, what, l)
			}
		}
	}

	// A one-character secret is refused at load, named with its place.
	os.WriteFile(cfg, []byte("secrets:\n  K: {env: HOSTILE_K}\n  TINY: {env: HOSTILE_TINY}\nflows: [flows/hostile.yaml]\n"), 0o644)
	out, errOut, code = runCmd(t, append(env, "HOSTILE_TINY=q", "HOSTILE_K="+secrets["K"]), "validate", "--secrets", "--config", cfg)
	if code != 2 || !strings.Contains(errOut, "probes.yaml:3:3: secret TINY is too short: 1 characters, want at least 8") {
		t.Errorf("a one-character secret: exit %d\n%s%s", code, out, errOut)
	}
}

// showsSecret says where text shows 8 or more characters of v: as is,
// Go-quoted, JSON- or HTML-escaped, or base64-encoded at any alignment.
func showsSecret(text, v string) string {
	for i := 0; i+8 <= len(v); i++ {
		part := v[i : i+8]
		b, _ := json.Marshal(part)
		for _, form := range []string{part, strconv.Quote(part), string(b), html.EscapeString(part)} {
			if len(form) > 8 && form[0] == '"' {
				form = form[1 : len(form)-1]
			}
			if j := strings.Index(text, form); j >= 0 {
				return fmt.Sprintf("%q: …%s…", form, text[max(0, j-60):min(len(text), j+len(form)+20)])
			}
		}
	}
	for _, run := range regexp.MustCompile(`[A-Za-z0-9+/]{11,}`).FindAllString(text, -1) {
		for off := range 4 {
			if off >= len(run) {
				break
			}
			s := run[off:]
			dec, err := base64.RawStdEncoding.DecodeString(s[:len(s)/4*4])
			if err != nil {
				continue
			}
			for i := 0; i+8 <= len(v); i++ {
				if strings.Contains(string(dec), v[i:i+8]) {
					return fmt.Sprintf("base64 %q decodes to %q", run, dec)
				}
			}
		}
	}
	return ""
}

// extraBytesServer answers with a body and then more bytes than its
// Content-Length, carrying leak.
func extraBytesServer(t *testing.T, leak string) string {
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
					c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + "HTTP/1.1 200 OK\r\nX-Leak: " + leak + "\r\n\r\n"))
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}
