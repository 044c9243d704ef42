package main

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/prober-dev/prober/internal/secret"
)

// cookieOctets are the bytes a cookie value may hold (RFC 6265 4.1.1).
var cookieOctets = func() []byte {
	var b []byte
	for c := byte(0x21); c <= 0x7e; c++ {
		if c != '"' && c != ',' && c != ';' && c != '\\' {
			b = append(b, c)
		}
	}
	return b
}()

// cookieLeak says where out shows 8 bytes of v raw, or in hex, or in
// base64 (any run of base64 characters decoded at each alignment).
func cookieLeak(v, out string) string {
	for i := 0; i+8 <= len(v); i++ {
		w := v[i : i+8]
		for _, f := range []string{w, hex.EncodeToString([]byte(w)), strings.ToUpper(hex.EncodeToString([]byte(w)))} {
			if j := strings.Index(out, f); j >= 0 {
				return fmt.Sprintf("%q at %d: …%s…", f, j, out[max(0, j-60):min(len(out), j+len(f)+60)])
			}
		}
	}
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		for _, run := range strings.FieldsFunc(out, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '+' || r == '/' || r == '-' || r == '_')
		}) {
			for off := 0; off < 4 && off < len(run); off++ {
				s := run[off:]
				dec, err := enc.DecodeString(s[:len(s)/4*4])
				if err != nil {
					continue
				}
				for i := 0; i+8 <= len(v); i++ {
					if strings.Contains(string(dec), v[i:i+8]) {
						return fmt.Sprintf("base64 %q holds %q", run, v[i:i+8])
					}
				}
			}
		}
	}
	return ""
}

// TestOnceCookieValuesNeverShown is a property test: for random cookie
// values (every byte a cookie may hold, 8 to 160 of them), a session
// cookie (HttpOnly, rotated), a plain one and the session captured and
// sent in a header show in none of once's outputs, raw, hex or base64:
// the text story, --verbose, --json, --verbose on stderr and JUnit; not
// even when the server echoes them in its body in all three forms, and
// every expectation reading them fails. Their fingerprints show instead.
func TestOnceCookieValuesNeverShown(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, uint64(os.Getpid())))
	gen := func() string {
		b := make([]byte, 8+rng.IntN(153))
		for i := range b {
			b[i] = cookieOctets[rng.IntN(len(cookieOctets))]
		}
		return string(b)
	}
	var (
		mu        sync.Mutex
		sid, sid2 string
		pref      string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		s1, s2, p := sid, sid2, pref
		mu.Unlock()
		switch r.URL.Path {
		case "/login":
			http.SetCookie(w, &http.Cookie{Name: "sid", Value: s1, Path: "/", HttpOnly: true})
			http.SetCookie(w, &http.Cookie{Name: "pref", Value: p, Path: "/"})
			http.Redirect(w, r, "/home", http.StatusSeeOther)
		case "/home":
			fmt.Fprint(w, "<title>Home</title>")
		case "/api":
			http.SetCookie(w, &http.Cookie{Name: "sid", Value: s2, Path: "/", HttpOnly: true})
			w.WriteHeader(http.StatusInternalServerError)
			for _, c := range r.Cookies() {
				fmt.Fprintf(w, "%s raw=%s hex=%x b64=%s\n", c.Name, c.Value, c.Value, base64.StdEncoding.EncodeToString([]byte(c.Value)))
			}
			fmt.Fprintf(w, "header raw=%s\n", r.Header.Get("X-Sid"))
		}
	}))
	defer srv.Close()
	dir := writeFiles(t, map[string]string{
		"probes.yaml": "flows: [flows/f.yaml]\n",
		"flows/f.yaml": `name: f
every: 1m
steps:
  - name: login
    request: {url: "` + srv.URL + `/login"}
    expect: [status == 200, exists(cookie.sid)]
    capture: {s: cookie.sid}
  - name: api
    request: {url: "` + srv.URL + `/api", headers: {X-Sid: "{{s}}"}}
    expect:
      - cookie.sid == "nope"
      - cookie.pref == "nope"
      - headers.Set-Cookie contains "nope"
      - body contains "nope"
`,
	})
	junit := filepath.Join(dir, "junit.xml")
	for i := range 25 {
		mu.Lock()
		sid, sid2, pref = gen(), gen(), gen()
		values := []string{sid, sid2, pref}
		mu.Unlock()
		var outs []string
		for _, args := range [][]string{
			{"once", "--config", dir + "/probes.yaml", "--junit", junit},
			{"once", "--verbose", "--config", dir + "/probes.yaml"},
			{"once", "--json", "--verbose", "--config", dir + "/probes.yaml"},
		} {
			code, out, errOut := invoke(args...)
			if code != 1 {
				t.Fatalf("once %v: exit %d: %s %s", args, code, out, errOut)
			}
			outs = append(outs, out, errOut)
		}
		j, err := os.ReadFile(junit)
		if err != nil {
			t.Fatal(err)
		}
		all := strings.Join(append(outs, string(j)), "\n")
		for _, v := range values {
			if l := cookieLeak(v, all); l != "" {
				t.Fatalf("case %d: cookie value %q shows: %s", i, v, l)
			}
		}
		// Fingerprints instead: the failure sentence, the rotated session's
		// Set-Cookie and the Cookie header sent (--verbose).
		for _, w := range []string{
			`cookie.sid == "nope": got "` + secret.Fingerprint(sid2), // then "…" past 120 bytes
			"Set-Cookie: sid=" + secret.Fingerprint(sid2) + "; Path=/; HttpOnly",
			"> Cookie: sid=" + secret.Fingerprint(sid) + "; pref=" + secret.Fingerprint(pref),
			"> X-Sid: " + secret.Fingerprint(sid),
		} {
			if !strings.Contains(all, w) {
				t.Fatalf("case %d: once's output lacks %q:\n%s", i, w, outs[2])
			}
		}
	}
}
