package runner

import (
	"encoding/hex"
	"net/http"
	"slices"
	"strings"

	"github.com/prober-dev/prober/internal/secret"
)

// A session cookie is a credential: every cookie value a server sets in a
// run is shown, wherever the run's failures, kept response, shown captures
// or --verbose would show it (an echo in a body, a captured cookie sent in
// a header, a failed cookie.NAME expectation), as its fingerprint
// (secret.Fingerprint), and Cookie and Set-Cookie headers show every
// value so (secret.MaskCookies, which also covers values under
// secret.MinLen, too short to find in free text).

// Bounds on the values a run remembers: the set masking them indexes
// every form of every value (1.7 ms for two 32-byte ids, hex included, on
// 2 cores at load 18; 50 ms for 16 of 256 bytes), built on a failed run,
// so a server setting many or huge cookies must not make it slow. Past
// them, Cookie and Set-Cookie headers still show fingerprints.
const (
	maxSeenCookies     = 16
	maxSeenCookieBytes = 4 << 10 // in all: a few JWTs
)

// remember keeps the distinct values of cookies, within the bounds.
func (j *runJar) remember(cs []*http.Cookie) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, c := range cs {
		if c.Value != "" && len(j.values) < maxSeenCookies && j.bytes+len(c.Value) <= maxSeenCookieBytes &&
			!slices.Contains(j.values, c.Value) {
			j.values = append(j.values, c.Value)
			j.bytes += len(c.Value)
		}
	}
}

// jarValues is how many cookie values the run's servers have set.
func (r *run) jarValues() int {
	j := &r.jar
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.values)
}

// redactOut redacts what a failure, the kept response, a shown capture or
// --verbose shows: the secrets, and each cookie value the run was set, in
// any form, as its fingerprint. The set masking them is built here, only
// when the run has cookies it has not masked yet: a passing run (and the
// per-step attributes, which use redact) pays nothing for it.
func (r *run) redactOut(s string) string {
	j := &r.jar
	j.mu.Lock()
	n := len(j.values)
	if n > 0 && (n != r.outSeen || r.outBase != r.secrets) {
		masks := make(map[string]string, 3*n)
		for _, v := range j.values {
			// Hex too: a server may echo a session id so (secret.Forms
			// has no hex: a configured secret is rarely sent as hex).
			fp, h := secret.Fingerprint(v), hex.EncodeToString([]byte(v))
			masks[v], masks[h], masks[strings.ToUpper(h)] = fp, fp, fp
		}
		// The OAuth2 token replaces r.secrets mid-run: rebuilt over it.
		r.outSet, r.outBase, r.outSeen = r.secrets.Masking(masks), r.secrets, n
	}
	j.mu.Unlock()
	if n == 0 {
		return r.redact(s)
	}
	return r.outSet.Redact(s)
}
