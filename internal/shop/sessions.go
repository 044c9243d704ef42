package shop

import (
	"crypto/sha256"
	"crypto/subtle"
	"sync"
	"time"
)

// sessionStore holds sessions by a random id: the API's bearer tokens,
// the storefront's cookie and the gateway's checkout sessions are the
// same kind of thing, a key to a bounded store (at most max, the oldest
// go first) whose entries live ttl from when they were made. An expired
// session is forgotten when it is asked for.
type sessionStore[V any] struct {
	now   func() time.Time
	ttl   time.Duration
	newID func() string
	mu    sync.Mutex
	m     *fifo[string, expiring[V]]
}

type expiring[V any] struct {
	v       V
	expires time.Time
}

// newSessionStore makes ids with newID (nil: 32 random bytes in hex) and
// reads the time through now at each call (tests move the clock after).
func newSessionStore[V any](now func() time.Time, ttl time.Duration, max int, newID func() string) *sessionStore[V] {
	if newID == nil {
		newID = func() string { return randomHex(32) }
	}
	return &sessionStore[V]{now: now, ttl: ttl, newID: newID, m: newFIFO[string, expiring[V]](max)}
}

// start stores v as a new session and returns its id.
func (st *sessionStore[V]) start(v V) string {
	id := st.newID()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.m.put(id, expiring[V]{v, st.now().Add(st.ttl)})
	return id
}

// get returns the live session named id.
func (st *sessionStore[V]) get(id string) (V, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	e, ok := st.m.get(id)
	if ok && !st.now().Before(e.expires) {
		st.m.del(id)
		ok = false
	}
	if !ok {
		var zero V
		return zero, false
	}
	return e.v, true
}

// end forgets the session named id.
func (st *sessionStore[V]) end(id string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.m.del(id)
}

// validLogin checks a user name and password against the shop's, hashed
// first so the comparison is constant-time whatever their lengths.
func (s *Shop) validLogin(user, pass string) bool {
	uh, ph := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
	return subtle.ConstantTimeCompare(uh[:], s.userHash[:])&subtle.ConstantTimeCompare(ph[:], s.passHash[:]) == 1
}
