package secret

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
)

// A cookie's value is a credential more often than not: a session id, a
// remember-me or CSRF token, a signed JWT. Neither its name nor its flags
// tell which (a JavaScript-readable "token", a framework's "_app_key", a
// load balancer's sticky cookie), so every cookie value is shown as a
// fingerprint, never as itself: its length and the start of its SHA-256,
// enough to see that two runs got the same session or a new one. The
// price is that a harmless value (lang=en) is not readable either; the
// expectation that reads it still says what was expected.

// fingerprintPrefix starts every fingerprint (and nothing a server sends:
// a cookie value has no space or comma).
const fingerprintPrefix = "[cookie, "

// Fingerprint is how a cookie value v is shown:
// "[cookie, 32 bytes, sha256:ab12cd34]". 32 bits of the hash compare
// runs; they cannot undo a session id.
func Fingerprint(v string) string {
	sum := sha256.Sum256([]byte(v))
	unit := " bytes, sha256:"
	if len(v) == 1 {
		unit = " byte, sha256:"
	}
	return fingerprintPrefix + strconv.Itoa(len(v)) + unit + hex.EncodeToString(sum[:4]) + "]"
}

// MaskCookies returns a header's value with the values of the cookies it
// carries shown as fingerprints, when name is Cookie (name=value pairs)
// or Set-Cookie (the first pair; the attributes stay readable); other
// headers' values are returned as they are. A cookie value holding one of
// s's secrets is redacted by name instead ([secret:NAME]): a hash of a
// configured secret is not shown. An empty value (a cookie being
// deleted) and one already masked (a fingerprint, [secret:NAME]) stay as
// they are.
func MaskCookies(name, value string, s *Set) string {
	switch {
	case strings.EqualFold(name, "Set-Cookie"):
		if pair, attrs, ok := strings.Cut(value, ";"); ok {
			return maskPair(pair, s) + ";" + attrs
		}
		return maskPair(value, s)
	case strings.EqualFold(name, "Cookie"):
		pairs := strings.Split(value, ";")
		for i, p := range pairs {
			pairs[i] = maskPair(p, s)
		}
		return strings.Join(pairs, ";")
	}
	return value
}

// maskPair masks the value of one " name=value" (spaces kept).
func maskPair(p string, s *Set) string {
	eq := strings.IndexByte(p, '=')
	if eq < 0 {
		return p
	}
	v := strings.TrimSpace(p[eq+1:])
	if v == "" || strings.HasPrefix(v, fingerprintPrefix) || strings.Contains(v, "[secret:") {
		return p // nothing to hide, or masked already
	}
	if red := s.Redact(v); red != v {
		return p[:eq+1] + red
	}
	return p[:eq+1] + Fingerprint(v)
}
