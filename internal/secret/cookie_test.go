package secret

import (
	"regexp"
	"strings"
	"testing"
)

func TestMaskCookies(t *testing.T) {
	set := NewSet(map[string]string{"SESS": "s3cr3t-session-value"})
	fp := Fingerprint("0123456789abcdef0123456789abcdef")
	if !regexp.MustCompile(`^\[cookie, 32 bytes, sha256:[0-9a-f]{8}\]$`).MatchString(fp) {
		t.Fatalf("fingerprint %q", fp)
	}
	// The same across runs and versions (runs are compared by it), and
	// different for different values.
	if got := Fingerprint("a"); got != "[cookie, 1 byte, sha256:ca978112]" || got == Fingerprint("b") {
		t.Fatalf("Fingerprint(a) = %q", got)
	}
	for _, tc := range []struct{ name, in, want string }{
		{"Set-Cookie", "sid=0123456789abcdef0123456789abcdef; Path=/; HttpOnly; SameSite=Lax", "sid=" + fp + "; Path=/; HttpOnly; SameSite=Lax"},
		{"set-cookie", "sid=0123456789abcdef0123456789abcdef", "sid=" + fp},
		{"Cookie", "a=x; sid=0123456789abcdef0123456789abcdef", "a=" + Fingerprint("x") + "; sid=" + fp},
		{"Cookie", "lang=en", "lang=" + Fingerprint("en")},                              // every cookie, not only sessions
		{"Set-Cookie", "sid=; Max-Age=0", "sid=; Max-Age=0"},                            // a deletion has nothing to hide
		{"Set-Cookie", "sid=" + fp + "; Path=/", "sid=" + fp + "; Path=/"},              // masked once, not twice
		{"Set-Cookie", "sid=s3cr3t-session-value; Path=/", "sid=[secret:SESS]; Path=/"}, // a secret by name, never hashed
		{"Cookie", "sid=[secret:SESS]", "sid=[secret:SESS]"},
		{"Cookie", "novalue", "novalue"},
		{"Location", "/login?sid=abc", "/login?sid=abc"},
	} {
		if got := MaskCookies(tc.name, tc.in, set); got != tc.want {
			t.Errorf("MaskCookies(%s, %q) = %q, want %q", tc.name, tc.in, got, tc.want)
		}
	}
}

func TestMasking(t *testing.T) {
	base := NewSet(map[string]string{"PW": "password-1234"})
	const v = "0123456789abcdef0123456789abcdef"
	set := base.Masking(map[string]string{v: Fingerprint(v), "short": Fingerprint("short")})
	in := "pw password-1234 cookie " + v + " b64 MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY= cut " + v[:20] + "… short"
	got := set.Redact(in)
	for _, leak := range []string{"password-1234", v[:8], "MDEyMzQ1Njc4"} {
		if strings.Contains(got, leak) {
			t.Errorf("%q shows %q", got, leak)
		}
	}
	if !strings.Contains(got, "[secret:PW]") || !strings.Contains(got, Fingerprint(v)) || !strings.HasSuffix(got, " short") {
		t.Errorf("Redact = %q", got)
	}
	if base.Redact(v) != v || set.Len() != 1 || set.Names()[0] != "PW" {
		t.Error("Masking changed its receiver, or added names")
	}
	if got := (*Set)(nil).Masking(map[string]string{v: "[x]"}).Redact(v); got != "[x]" {
		t.Errorf("nil set Masking: %q", got)
	}
}
