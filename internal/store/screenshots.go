package store

import (
	"github.com/prober-dev/prober/internal/result"
)

// MaxScreenshots bounds the screenshots whose bytes the store keeps, over
// all flows: the newest ones (a browser kind's are at most 256 KiB, so
// about 8 MiB). Runs keep their screenshots' sizes; the bytes of older
// ones are gone, and the run page says so. The archive (history.db) keeps
// no bytes: a failing browser flow would crowd the history out.
const MaxScreenshots = 32

// shots are the newest screenshots' bytes, by shotKey.
type shots struct {
	png  map[string][]byte
	ring []string // keys, oldest at next once full
	next int
}

func shotKey(traceID, spanID string) string { return traceID + "/" + spanID }

// keepShots takes r's screenshots' bytes into s.shots (evicting the
// oldest), and returns r without them for the ring: r itself is not
// changed (runs are shared). Runs without screenshots cost a loop.
func (s *Store) keepShots(r *result.Run) *result.Run {
	has := false
	for i := range r.Steps {
		if sh := r.Steps[i].Screenshot; sh != nil && sh.PNG != nil {
			has = true
			if s.shots.png == nil {
				s.shots.png = map[string][]byte{}
			}
			k := shotKey(r.TraceID, r.Steps[i].SpanID)
			if _, dup := s.shots.png[k]; dup {
				continue
			}
			if len(s.shots.ring) < MaxScreenshots {
				s.shots.ring = append(s.shots.ring, k)
			} else {
				delete(s.shots.png, s.shots.ring[s.shots.next])
				s.shots.ring[s.shots.next] = k
				s.shots.next = (s.shots.next + 1) % MaxScreenshots
			}
			s.shots.png[k] = sh.PNG
		}
	}
	if !has {
		return r
	}
	return withoutPNG(r)
}

// withoutPNG is r with its screenshots' bytes left out (a copy when it
// has any).
func withoutPNG(r *result.Run) *result.Run {
	var c *result.Run
	for i := range r.Steps {
		sh := r.Steps[i].Screenshot
		if sh == nil || sh.PNG == nil {
			continue
		}
		if c == nil {
			cp := *r
			cp.Steps = append([]result.Step(nil), r.Steps...)
			c = &cp
		}
		meta := *sh
		meta.PNG = nil
		c.Steps[i].Screenshot = &meta
	}
	if c == nil {
		return r
	}
	return c
}

// Screenshot returns the PNG of the step spanID of the run traceID, if
// the store still has it.
func (s *Store) Screenshot(traceID, spanID string) ([]byte, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, ok := s.shots.png[shotKey(traceID, spanID)]
	return b, ok
}
