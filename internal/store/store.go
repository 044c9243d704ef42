// Package store keeps the most recent runs of each flow in memory, bounded,
// for the status page, the results API and the rules; and, for the rules'
// longer windows (up to 3 days), compact history: bucketed counts of final
// runs and dependency calls, recent durations, and each region's current
// streak (see history.go).
package store

import (
	"slices"
	"sync"
	"time"

	"github.com/prober-dev/prober/internal/result"
)

// Store is a set of per-flow rings of runs, with their history. Safe for
// concurrent use.
type Store struct {
	mu    sync.RWMutex
	keep  int
	flows map[string]*flowData
	names []string // flows' names, sorted; nil when a flow came or went
	deps  map[string]*depHist
	// Duration samples kept per series (SetSampleRetention).
	sampleAge time.Duration
	sampleMax int
}

// flowData is one flow's recent runs and history.
type flowData struct {
	ring
	hist *flowHist // nil until the first run with a start time
}

type ring struct {
	runs []*result.Run // len <= keep
	next int           // where the next run goes once full
}

// New returns a store keeping up to keep runs per flow (at least 1).
func New(keep int) *Store {
	return &Store{keep: max(keep, 1), flows: map[string]*flowData{}, deps: map[string]*depHist{},
		sampleAge: DefaultSampleAge, sampleMax: DefaultSamples}
}

// Observe stores a completed run and adds it to the history. The run must
// not be modified afterwards.
func (s *Store) Observe(r *result.Run) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fd := s.flows[r.Flow]
	if fd == nil {
		fd = &flowData{ring: ring{runs: make([]*result.Run, 0, min(s.keep, 16))}}
		s.flows[r.Flow] = fd
		s.names = nil
	}
	s.observeHistory(fd, r)
	if len(fd.runs) < s.keep {
		fd.runs = append(fd.runs, r)
		return
	}
	fd.runs[fd.next] = r
	fd.next = (fd.next + 1) % s.keep
}

// Recent returns up to n runs of flow, newest first (all kept if n <= 0).
func (s *Store) Recent(flow string, n int) []*result.Run {
	s.mu.RLock()
	defer s.mu.RUnlock()
	fd := s.flows[flow]
	if fd == nil {
		return nil
	}
	return s.recentLocked(&fd.ring, n)
}

// Latest returns the newest run of flow, or nil.
func (s *Store) Latest(flow string) *result.Run {
	if rs := s.Recent(flow, 1); len(rs) == 1 {
		return rs[0]
	}
	return nil
}

// Flows lists the flows with stored runs, sorted.
func (s *Store) Flows() []string {
	s.mu.RLock()
	names := s.names
	s.mu.RUnlock()
	if names == nil {
		// Sorted once per change of the set, not per call: rules list
		// 10,000 flows every few seconds.
		s.mu.Lock()
		if s.names == nil {
			s.names = make([]string, 0, len(s.flows))
			for f := range s.flows {
				s.names = append(s.names, f)
			}
			slices.Sort(s.names)
		}
		names = s.names
		s.mu.Unlock()
	}
	return slices.Clone(names)
}

// Retain drops the runs and history of flows not in flows (after a reload
// removed them) and applies a new per-flow bound.
func (s *Store) Retain(flows []string, keep int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := map[string]bool{}
	for _, f := range flows {
		want[f] = true
	}
	for f, fd := range s.flows {
		if !want[f] {
			s.dropHistory(f, fd)
			delete(s.flows, f)
			s.names = nil
		}
	}
	keep = max(keep, 1)
	if keep == s.keep {
		return
	}
	for _, fd := range s.flows {
		old := s.recentLocked(&fd.ring, 0)
		if len(old) > keep {
			old = old[:keep]
		}
		slices.Reverse(old)       // oldest first again
		fd.ring = ring{runs: old} // full or not, the oldest is at 0
	}
	s.keep = keep
}

func (s *Store) recentLocked(rg *ring, n int) []*result.Run {
	total := len(rg.runs)
	if n <= 0 || n > total {
		n = total
	}
	out := make([]*result.Run, 0, n)
	newest := total - 1
	if total == s.keep {
		newest = (rg.next - 1 + total) % total
	}
	for i := 0; i < n; i++ {
		out = append(out, rg.runs[(newest-i+total)%total])
	}
	return out
}
