package schedule

import (
	"fmt"
	"math"
	"testing"
)

// Every flow runs on exactly one of n shards, the shards get about equal
// parts, and going from n to n+1 shards moves about 1/(n+1) of the flows,
// all of them to the new shard.
func TestShardsSplitAndRebalanceMinimally(t *testing.T) {
	const flows = 10000
	names := make([]string, flows)
	for i := range names {
		names[i] = fmt.Sprintf("flow-%05d", i)
	}
	prev := make([]int, flows)
	for n := 1; n <= 8; n++ {
		per := make([]int, n)
		moved := 0
		for k, name := range names {
			owners := 0
			for i := range n {
				if (Shard{Index: i, Count: n}).Owns(name) {
					owners++
					per[i]++
					if n > 1 && i != prev[k] {
						moved++
						if i != n-1 {
							t.Fatalf("%s moved from shard %d to %d, not to the new shard %d", name, prev[k], i, n-1)
						}
					}
					prev[k] = i
				}
			}
			if owners != 1 {
				t.Fatalf("%s is owned by %d of %d shards", name, owners, n)
			}
		}
		for i, c := range per {
			if share := float64(c) / flows; math.Abs(share-1/float64(n)) > 0.02 {
				t.Errorf("n=%d: shard %d owns %.3f of the flows, want %.3f", n, i, share, 1/float64(n))
			}
		}
		if n > 1 {
			if share := float64(moved) / flows; math.Abs(share-1/float64(n)) > 0.02 {
				t.Errorf("%d -> %d shards moved %.3f of the flows, want about %.3f", n-1, n, share, 1/float64(n))
			}
		}
	}
}

func TestParseShard(t *testing.T) {
	tests := []struct {
		in, host string
		want     Shard
		err      bool
	}{
		{"0/1", "", Shard{0, 1}, false},
		{"2/3", "", Shard{2, 3}, false},
		{"auto/3", "prober-2", Shard{2, 3}, false},
		{"auto/3", "prober-eu-0", Shard{0, 3}, false},
		{"auto/3", "prober-3", Shard{}, true},
		{"auto/3", "prober", Shard{}, true},
		{"3/3", "", Shard{}, true},
		{"-1/3", "", Shard{}, true},
		{"1/0", "", Shard{}, true},
		{"1", "", Shard{}, true},
		{"a/b", "", Shard{}, true},
	}
	for _, tt := range tests {
		got, err := ParseShard(tt.in, tt.host)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseShard(%q, %q) = %v, %v; want %v, error %v", tt.in, tt.host, got, err, tt.want, tt.err)
		}
	}
}
