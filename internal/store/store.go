// Package store keeps the most recent runs of each flow in memory, bounded,
// for the status page, the results API and the rules.
package store

import (
	"slices"
	"sync"

	"github.com/prober-dev/prober/internal/result"
)

// Store is a set of per-flow rings of runs. Safe for concurrent use.
type Store struct {
	mu    sync.RWMutex
	keep  int
	flows map[string]*ring
}

type ring struct {
	runs []*result.Run // len <= keep
	next int           // where the next run goes once full
}

// New returns a store keeping up to keep runs per flow (at least 1).
func New(keep int) *Store {
	return &Store{keep: max(keep, 1), flows: map[string]*ring{}}
}

// Observe stores a completed run. The run must not be modified afterwards.
func (s *Store) Observe(r *result.Run) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rg := s.flows[r.Flow]
	if rg == nil {
		rg = &ring{runs: make([]*result.Run, 0, min(s.keep, 16))}
		s.flows[r.Flow] = rg
	}
	if len(rg.runs) < s.keep {
		rg.runs = append(rg.runs, r)
		return
	}
	rg.runs[rg.next] = r
	rg.next = (rg.next + 1) % s.keep
}

// Recent returns up to n runs of flow, newest first (all kept if n <= 0).
func (s *Store) Recent(flow string, n int) []*result.Run {
	s.mu.RLock()
	defer s.mu.RUnlock()
	rg := s.flows[flow]
	if rg == nil {
		return nil
	}
	return s.recentLocked(rg, n)
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
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.flows))
	for f := range s.flows {
		out = append(out, f)
	}
	slices.Sort(out)
	return out
}

// Retain drops the runs of flows not in keep (after a reload removed them)
// and applies a new per-flow bound.
func (s *Store) Retain(flows []string, keep int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := map[string]bool{}
	for _, f := range flows {
		want[f] = true
	}
	for f := range s.flows {
		if !want[f] {
			delete(s.flows, f)
		}
	}
	keep = max(keep, 1)
	if keep == s.keep {
		return
	}
	for f, rg := range s.flows {
		old := s.recentLocked(rg, 0)
		if len(old) > keep {
			old = old[:keep]
		}
		slices.Reverse(old)           // oldest first again
		s.flows[f] = &ring{runs: old} // full or not, the oldest is at 0
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
