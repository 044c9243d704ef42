package shop

import (
	"testing"
	"time"
)

// TestSessionStore: the store behind the API's bearer tokens, the
// storefront's cookie and the gateway's checkout sessions: a session is
// found until its TTL after it started, then forgotten, or once ended;
// ids are distinct (and made by newID when given); beyond its bound the
// oldest goes first.
func TestSessionStore(t *testing.T) {
	now := time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)
	st := newSessionStore[webSession](func() time.Time { return now }, sessionTTL, maxSessions, nil)
	a := st.start(webSession{csrf: "c1", user: "u"})
	b := st.start(webSession{csrf: "c2"})
	if a == b || len(a) != 64 {
		t.Fatalf("ids %q %q", a, b)
	}
	if s, ok := st.get(a); !ok || s.csrf != "c1" || s.user != "u" {
		t.Fatalf("get(a) = %+v, %v", s, ok)
	}
	if _, ok := st.get("unknown"); ok {
		t.Fatal("an unknown id is a session")
	}
	now = now.Add(sessionTTL - time.Nanosecond)
	if _, ok := st.get(a); !ok {
		t.Fatal("a session ended before its TTL")
	}
	now = now.Add(time.Nanosecond)
	if _, ok := st.get(a); ok {
		t.Fatal("a session outlived its TTL")
	}
	if _, ok := st.m.get(a); ok {
		t.Error("an expired session was asked for and kept")
	}

	if _, ok := st.get(b); ok {
		t.Fatal("b outlived its TTL too")
	}
	c := st.start(webSession{})
	st.end(c)
	if _, ok := st.get(c); ok {
		t.Fatal("an ended session is still found")
	}
	cs := newSessionStore[int](func() time.Time { return now }, time.Hour, 3, func() string { return "cs_" + randomHex(16) })
	if id := cs.start(1); len(id) != 35 || id[:3] != "cs_" {
		t.Errorf("newID not used: %q", id)
	}

	first := st.start(webSession{})
	for range maxSessions {
		st.start(webSession{})
	}
	if _, ok := st.get(first); ok || st.m.order.Len() != maxSessions {
		t.Errorf("beyond %d sessions the oldest must go: %d kept", maxSessions, st.m.order.Len())
	}
}
