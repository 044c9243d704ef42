package main

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// hist is a log-linear histogram of durations in nanoseconds: exact below
// 64ns, then 64 buckets per power of two (at most 1.6% error), so that p99
// of a few milliseconds is read to the microsecond. Fixed size (30 KB), safe
// for concurrent adds, no allocation per sample.
type hist struct {
	counts [histBuckets]atomic.Uint64
	n, sum atomic.Uint64
	max    atomic.Int64
}

const (
	subBits     = 6
	sub         = 1 << subBits
	histBuckets = (64-subBits+1)*sub + sub
)

func bucketOf(v uint64) int {
	if v < sub {
		return int(v)
	}
	k := bits.Len64(v) - 1 // v in [2^k, 2^(k+1)), k >= subBits
	return (k-subBits+1)*sub + int(v>>(k-subBits)) - sub
}

// midOf is the middle of bucket i.
func midOf(i int) float64 {
	if i < sub {
		return float64(i)
	}
	e := i/sub - 1 // shift
	lo := uint64(i%sub+sub) << e
	return float64(lo) + float64(uint64(1)<<e)/2
}

func (h *hist) add(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[bucketOf(v)].Add(1)
	h.n.Add(1)
	h.sum.Add(v)
	for {
		m := h.max.Load()
		if int64(v) <= m || h.max.CompareAndSwap(m, int64(v)) {
			break
		}
	}
}

func (h *hist) count() uint64 { return h.n.Load() }

func (h *hist) mean() time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / n)
}

// quantile is the q-quantile, to the bucket (its middle; the maximum for q == 1).
func (h *hist) quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	if q >= 1 {
		return time.Duration(h.max.Load())
	}
	rank := uint64(q*float64(n-1)) + 1
	var c uint64
	for i := range h.counts {
		c += h.counts[i].Load()
		if c >= rank {
			return min(time.Duration(midOf(i)), time.Duration(h.max.Load()))
		}
	}
	return time.Duration(h.max.Load())
}

// snapshot is a plain copy, for sending and merging.
type histSnap struct {
	Counts []uint64 `json:"counts"` // sparse: pairs of bucket index, count
	N      uint64   `json:"n"`
	Sum    uint64   `json:"sum"`
	Max    int64    `json:"max"`
}

func (h *hist) snap() histSnap {
	s := histSnap{N: h.n.Load(), Sum: h.sum.Load(), Max: h.max.Load()}
	for i := range h.counts {
		if c := h.counts[i].Load(); c > 0 {
			s.Counts = append(s.Counts, uint64(i), c)
		}
	}
	return s
}

func (s histSnap) hist() *hist {
	h := &hist{}
	for i := 0; i+1 < len(s.Counts); i += 2 {
		if s.Counts[i] < histBuckets {
			h.counts[s.Counts[i]].Store(s.Counts[i+1])
		}
	}
	h.n.Store(s.N)
	h.sum.Store(s.Sum)
	h.max.Store(s.Max)
	return h
}
