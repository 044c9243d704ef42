package secret

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"html"
	"html/template"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// encodings are the ways a value is written on its way to an output,
// computed here independently of Forms.
var encodings = map[string]func(string) string{
	"raw":          func(v string) string { return v },
	"strconv":      strconv.Quote,
	"%q in text":   func(v string) string { return fmt.Sprintf("got %q (x)", "echo "+v+" back") },
	"%+q":          func(v string) string { return fmt.Sprintf("%+q", v) },
	"json":         func(v string) string { b, _ := json.Marshal(map[string]string{"k": "[" + v + "]"}); return string(b) },
	"json no html": jsonNoHTML,
	"json then %q": func(v string) string { b, _ := json.Marshal(v); return strconv.Quote(`{"a":` + string(b) + `}`) },
	"query":        func(v string) string { return "https://x/?k=" + url.QueryEscape(v) + "&z=1" },
	"path":         func(v string) string { return "https://x/a/" + url.PathEscape(v) + "/b" },
	"html":         func(v string) string { return "<p>" + html.EscapeString(v) + "</p>" },
	"html/template": func(v string) string {
		var b bytes.Buffer
		htmlTemplate.Execute(&b, v)
		return b.String()
	},
	"xml": func(v string) string {
		var b bytes.Buffer
		xml.EscapeText(&b, []byte(v))
		return "<m>" + b.String() + "</m>"
	},
	"header": func(v string) string {
		// net/http writes CR and LF as spaces; textproto trims the ends.
		return "X-Echo: " + strings.TrimSpace(strings.NewReplacer("\r", " ", "\n", " ").Replace(v))
	},
	"folded": func(v string) string { return strings.Join(strings.Fields("error: "+v+" happened"), " ") },
}

var htmlTemplate = template.Must(template.New("").Parse(`<p title="{{.}}">{{.}}</p>`))

func jsonNoHTML(v string) string {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	e.Encode(v)
	return b.String()
}

// basicAuth is the Authorization header of user:v for users of every
// length modulo 3, and the secret as the user too.
func basicAuths(v string) []string {
	var out []string
	for _, user := range []string{"", "u", "us", "use", "user"} {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding} {
			out = append(out, "Basic "+enc.EncodeToString([]byte(user+":"+v)))
		}
	}
	out = append(out, "Basic "+base64.StdEncoding.EncodeToString([]byte(v+":pw")))
	return out
}

// leak says where out shows 8 or more characters of v: in any of the
// encodings above, or in base64 text decoded at any alignment.
func leak(out, v string) string { return newChecker(v).leak(out) }

// checker finds leaks of one secret; build it once per secret. It knows
// each encoding of each 8-character part of the secret (the part the
// encoding makes of it, without the text it adds around), indexed by
// their first 8 bytes.
type checker struct {
	first [1 << 16]bool // by the hash of the first 4 bytes of a part
	parts map[string][]string
	raw   map[string]bool // 8-byte windows of the secret, for base64
}

func newChecker(v string) *checker {
	c := &checker{parts: map[string][]string{}, raw: map[string]bool{}}
	for i := 0; i+8 <= len(v); i++ {
		c.raw[v[i:i+8]] = true
	}
	var starts []int
	for i := range v {
		starts = append(starts, i)
	}
	starts = append(starts, len(v))
	for k := 0; k+8 < len(starts); k++ {
		sub := v[starts[k]:starts[k+8]]
		for _, enc := range encodings {
			e, empty := enc(sub), enc("")
			pre := 0
			for pre < len(e) && pre < len(empty) && e[pre] == empty[pre] {
				pre++
			}
			post := 0
			for post < len(e)-pre && post < len(empty)-pre && e[len(e)-1-post] == empty[len(empty)-1-post] {
				post++
			}
			mid := e[pre : len(e)-post]
			if len(mid) < 8 || slices.Contains(c.parts[mid[:8]], mid) {
				continue
			}
			c.parts[mid[:8]] = append(c.parts[mid[:8]], mid)
			c.first[hash(key(mid))] = true
		}
	}
	return c
}

func (c *checker) leak(out string) string {
	for i := 0; i+8 <= len(out); i++ {
		if !c.first[hash(key(out[i:]))] {
			continue
		}
		for _, p := range c.parts[out[i:i+8]] {
			if strings.HasPrefix(out[i:], p) {
				return fmt.Sprintf("%q at %d in …%q…", p, i, out[max(0, i-60):min(len(out), i+len(p)+60)])
			}
		}
	}
	// base64: decode every run of base64 characters at each alignment.
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		for _, run := range strings.FieldsFunc(out, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '+' || r == '/' || r == '-' || r == '_')
		}) {
			for off := range 4 {
				if off >= len(run) {
					break
				}
				s := run[off:]
				s = s[:len(s)/4*4]
				dec, err := enc.DecodeString(s)
				if err != nil {
					continue
				}
				for i := 0; i+8 <= len(dec); i++ {
					if c.raw[string(dec[i:i+8])] {
						return fmt.Sprintf("base64 %q decodes to %q", run, dec)
					}
				}
			}
		}
	}
	return ""
}

func TestRedactEveryEncoding(t *testing.T) {
	for _, v := range []string{
		`ab"cd&ef`,                  // (a): Go-quoted as ab\"cd&ef
		`Pw0rd-LeakCanary`,          // (b): base64 in basic auth
		`back\slash<tag>&amp;'q'+x`, // HTML, JSON and Go escapes at once
		"  spaced\r\nsecret value  ",
		"ünïcödé-sécret-✓",
		"\x00nul\x7fdel\tsecret",
	} {
		s := NewSet(map[string]string{"S": v})
		for name, enc := range encodings {
			if out := s.Redact(enc(v)); leak(out, v) != "" {
				t.Errorf("%q %s: %s", v, name, leak(out, v))
			}
		}
		for _, h := range basicAuths(v) {
			if out := s.Redact("got " + strconv.Quote(h)); leak(out, v) != "" {
				t.Errorf("%q basic auth: %s", v, leak(out, v))
			}
		}
	}
}

// (a) of issue 13, as a failure message shows it.
func TestRedactGoQuotedEcho(t *testing.T) {
	s := NewSet(map[string]string{"K": `ab"cd&ef`})
	got := s.Redact(`header.X-Echo-Key == "nope": got "ab\"cd&ef"`)
	if got != `header.X-Echo-Key == "nope": got "[secret:K]"` {
		t.Fatal(got)
	}
}

// (b): an echoed Authorization header.
func TestRedactBasicAuthEcho(t *testing.T) {
	s := NewSet(map[string]string{"PW": "Pw0rd-LeakCanary"})
	msg := `header.X-Echo-Auth == "nope": got "Basic ` + base64.StdEncoding.EncodeToString([]byte("u:Pw0rd-LeakCanary")) + `"`
	if out := s.Redact(msg); leak(out, "Pw0rd-LeakCanary") != "" || !strings.Contains(out, "[secret:PW]") {
		t.Fatalf("%s: %s", out, leak(out, "Pw0rd-LeakCanary"))
	}
}

// (c): a value shortened before it is redacted, cut at every place a
// secret can straddle, as failure messages cut (with "…") and as a plain
// byte limit cuts (at the end of the text).
func TestRedactAcrossCuts(t *testing.T) {
	const v = "LeakCanary-0123456789abcde" // 26 characters
	s := NewSet(map[string]string{"S": v})
	for _, quote := range []bool{false, true} {
		for at := 0; at <= 150; at++ {
			text := strings.Repeat("x", at) + v + strings.Repeat("y", 150)
			cut := text[:120]
			shown := cut + "…"
			if quote {
				shown = strconv.Quote(cut)
				shown = shown[:len(shown)-1] + `…" (300 bytes)`
			}
			for _, out := range []string{s.Redact(shown), s.Redact(cut)} {
				if l := leakN(out, v, 4); l != "" && !(out == s.Redact(cut) && len(l) < 8) {
					t.Fatalf("at %d: %s", at, l)
				}
			}
			// A window in the middle, cut on both sides.
			if at >= 10 {
				mid := "…" + text[at+5:at+20] + "…"
				if l := leakN(s.Redact(mid), v, 4); l != "" {
					t.Fatalf("middle at %d: %s", at, l)
				}
			}
		}
	}
}

// leakN is the first n-byte part of v in out, or "".
func leakN(out, v string, n int) string {
	for i := 0; i+n <= len(v); i++ {
		if strings.Contains(out, v[i:i+n]) {
			return v[i : i+n]
		}
	}
	return ""
}

// Ordinary text, even with cut markers, passes untouched and unallocated.
func TestRedactLeavesOtherTextAlone(t *testing.T) {
	s := NewSet(map[string]string{"A": "LeakCanary-0123", "B": `ab"cd&ef`})
	for _, text := range []string{
		`json.status == "success": got "processing"`,
		`"a long body …" (512 bytes)`,
		"Lea… Can…", "ab…", "…ef", "a plain text whose end is no secret",
	} {
		if got := s.Redact(text); got != text {
			t.Errorf("Redact(%q) = %q", text, got)
		}
	}
	msg := `json.status == "success": got "processing" and more text around it`
	if n := testing.AllocsPerRun(100, func() { s.Redact(msg) }); n != 0 {
		t.Errorf("%v allocations on a text without secrets", n)
	}
}

func TestShort(t *testing.T) {
	for v, want := range map[string]bool{
		"": true, "a": true, "1234567": true, "12345678": false,
		"  123 456  ": true, // 7 characters once the spaces are folded
		"ééééééé":     true, // 7 characters, 14 bytes
		"éééééééé":    false,
	} {
		if Short(v) != want {
			t.Errorf("Short(%q) = %v", v, !want)
		}
	}
}

// TestRedactProperty: random secrets (quotes, backslashes, &<>, Unicode,
// control characters, lengths around the cut limits) in random texts
// through every encoding, shortened at random places: nothing of 8 bytes
// or more of any secret survives.
func TestRedactProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 1))
	alphabet := []string{`"`, `\`, "&", "<", ">", "'", "+", "/", "%", " ", "\n", "\t", "\x00", "é", "✓", "😀", "\xff",
		"a", "b", "c", "X", "Y", "0", "1", "-", "_", "="}
	for i := 0; i < 40; i++ {
		n := []int{8, 9, 10, 26, 60, 99, 100, 119, 120, 121, 200, 1023, 1024, 1025}[rng.IntN(14)]
		var b strings.Builder
		for b.Len() < n {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		v := b.String()
		if Short(v) {
			continue
		}
		other := "Other-Secret-" + strconv.Itoa(i)
		s := NewSet(map[string]string{"S": v, "O": other})
		c := newChecker(v)
		texts := []string{}
		for _, enc := range encodings {
			texts = append(texts, enc(v))
		}
		texts = append(texts, basicAuths(v)...)
		for _, text := range texts {
			text = "lead " + text + " " + other + " tail"
			for _, out := range []string{s.Redact(text), s.Redact(cutAt(text, rng.IntN(len(text)+1)))} {
				if l := c.leak(out); l != "" {
					t.Fatalf("secret %q: %s", v, l)
				}
				if strings.Contains(out, other) {
					t.Fatalf("second secret in %q", out)
				}
			}
		}
	}
}

// cutAt shortens text at about n bytes as failure messages do.
func cutAt(text string, n int) string {
	for n > 0 && n < len(text) && !utf8.RuneStart(text[n]) {
		n--
	}
	if n >= len(text) {
		return text
	}
	return text[:n] + "… (" + strconv.Itoa(len(text)) + " bytes)"
}
