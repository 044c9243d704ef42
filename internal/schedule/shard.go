package schedule

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
)

// Shard is this prober's part of the flows when N probers share them: flow
// f runs here when Owner(f, Count) == Index. The zero Shard (or Count 1)
// owns every flow.
type Shard struct {
	Index, Count int
}

// Owns says whether flow runs on this shard.
func (s Shard) Owns(flow string) bool {
	return s.Count <= 1 || Owner(flow, s.Count) == s.Index
}

func (s Shard) String() string {
	if s.Count <= 1 {
		return "0/1"
	}
	return fmt.Sprintf("%d/%d", s.Index, s.Count)
}

// Owner is the shard of n that runs flow, by rendezvous (highest random
// weight) hashing: each shard scores the flow's name and the highest score
// wins. Going from n to n+1 shards moves only the flows the new shard now
// wins, about 1/(n+1) of them, and every other flow stays where it was.
func Owner(flow string, n int) int {
	best, bestW := 0, uint64(0)
	for i := range n {
		if w := weight(flow, i); i == 0 || w > bestW {
			best, bestW = i, w
		}
	}
	return best
}

// weight is shard i's score for flow: FNV-1a of the name and the shard,
// mixed (splitmix64's finaliser) so that nearby inputs score independently.
func weight(flow string, i int) uint64 {
	h := fnv.New64a()
	h.Write([]byte(flow))
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(i))
	h.Write(b[:])
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// ParseShard reads --shard: "i/n" (0 <= i < n), or "auto/n" taking i from a
// StatefulSet-style ordinal at the end of hostname ("prober-2" is 2).
func ParseShard(s, hostname string) (Shard, error) {
	is, ns, ok := strings.Cut(s, "/")
	if !ok {
		return Shard{}, fmt.Errorf("shard %q: want i/n, e.g. 0/3, or auto/n", s)
	}
	n, err := strconv.Atoi(ns)
	if err != nil || n < 1 {
		return Shard{}, fmt.Errorf("shard %q: n must be a whole number of at least 1", s)
	}
	if is == "auto" {
		k := strings.LastIndexByte(hostname, '-')
		i, err := strconv.Atoi(hostname[k+1:])
		if k < 0 || err != nil || i < 0 {
			return Shard{}, fmt.Errorf("shard %q: hostname %q does not end in -<ordinal> (as a StatefulSet's pods do)", s, hostname)
		}
		if i >= n {
			return Shard{}, fmt.Errorf("shard %q: hostname %q is ordinal %d, not below %d", s, hostname, i, n)
		}
		return Shard{Index: i, Count: n}, nil
	}
	i, err := strconv.Atoi(is)
	if err != nil || i < 0 || i >= n {
		return Shard{}, fmt.Errorf("shard %q: i must be from 0 to %d", s, n-1)
	}
	return Shard{Index: i, Count: n}, nil
}
