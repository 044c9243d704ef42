package store

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/prober-dev/prober/internal/result"
)

// flowsLoad queues two runs of each of flows (as 4,000 checks/s would
// between two flushes at 2,000 flows), tick after tick.
type flowsLoad struct {
	a     *Archive
	names []string
	r     *result.Run
	tick  int
}

func newFlowsLoad(a *Archive, flows int) *flowsLoad {
	l := &flowsLoad{a: a, r: timed("x", t0, time.Second, true, 1)}
	for i := range flows {
		l.names = append(l.names, fmt.Sprintf("load-%05d", i))
	}
	return l
}

func (l *flowsLoad) queue() int {
	for i, n := range l.names {
		for j := range 2 {
			l.r.Flow = n
			l.r.Start = t0.Add(time.Duration(l.tick)*2*time.Second + time.Duration(j)*time.Second + time.Duration(i)*time.Microsecond)
			l.a.Observe(l.r)
		}
	}
	l.tick++
	return 2 * len(l.names)
}

// A flush's cost grows with the runs it writes, not with the flows they
// belong to: at 2,000 flows' two runs each, on a file of a minute of them,
// it writes at most 0.3 pages a run (was 1.6: three pages of each flow's
// own buckets, 52 MB a flush at 4,000 flows) and allocates at most 25
// times a run (was 50).
func TestArchiveFlushCost(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector adds allocations")
	}
	a := openArchive(t, filepath.Join(t.TempDir(), "history.db"), ArchiveLimits{})
	l := newFlowsLoad(a, 2000)
	for range 30 {
		l.queue()
		if err := a.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	st0 := a.db.Stats()
	var runs int
	allocs := testing.AllocsPerRun(3, func() {
		runs = l.queue()
		if err := a.Flush(); err != nil {
			t.Fatal(err)
		}
	})
	st1 := a.db.Stats()
	st := st1.Sub(&st0)
	pages := float64(st.TxStats.GetWrite()) / 4 / float64(runs) // AllocsPerRun runs it once more
	perRun := (allocs - float64(runs)) / float64(runs)          // Observe's copy of each run is not the flush's
	t.Logf("a flush of %d runs: %.3f pages written a run, %.1f allocations a run", runs, pages, perRun)
	if pages > 0.3 {
		t.Errorf("%.3f pages written a run, want at most 0.3", pages)
	}
	if perRun > 25 {
		t.Errorf("%.1f allocations a flushed run, want at most 25", perRun)
	}
}

// BenchmarkArchiveFlushFlows is one flush of 4000 flows' two runs each
// (4000 checks/s flushed every 2 s), on a file that already holds a minute.
func BenchmarkArchiveFlushFlows(b *testing.B) {
	a := openArchive(b, filepath.Join(b.TempDir(), "history.db"), ArchiveLimits{})
	l := newFlowsLoad(a, 4000)
	for range 30 {
		l.queue()
		if err := a.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	st0 := a.db.Stats()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		l.queue()
		b.StartTimer()
		if err := a.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	st1 := a.db.Stats()
	st := st1.Sub(&st0)
	b.ReportMetric(float64(st.TxStats.GetWrite())/float64(b.N), "pagewrites/op")
	b.ReportMetric(float64(st.TxStats.GetPageAlloc())/float64(b.N), "pagebytes/op")
}

// A file of the first layout (a bucket per flow) is converted when opened:
// its runs, newest first, its buckets and its sizes for pruning, and the
// old buckets are gone.
func TestArchiveConvertsFirstLayout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.db")
	now := t0.Add(time.Hour)
	var kept []*result.Run
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		root, _ := tx.CreateBucket(bucketFlows)
		for f := range migrateChunk + 50 { // two transactions
			flow := fmt.Sprintf("flow-%03d", f)
			fb, _ := root.CreateBucket([]byte(flow))
			rb, _ := fb.CreateBucket(bucketRuns)
			fine, _ := fb.CreateBucket(bucketFine)
			coarse, _ := fb.CreateBucket(bucketCoarse)
			var bytes uint64
			for i := range 5 {
				r := timed(flow, now.Add(-time.Duration(5-i)*time.Minute), time.Second, i != 2, f*10+i)
				if f == 7 {
					kept = append(kept, r)
				}
				v := appendArchived(nil, r)
				rb.Put(binary.BigEndian.AppendUint64(nil, uint64(r.Start.UnixNano())), v)
				bytes += uint64(len(v))
			}
			fb.Put([]byte("bytes"), binary.AppendUvarint(nil, bytes))
			// The 5 runs in the 5m bucket of 01:55 and the hour of 01:00
			// (t0 is 02:00): 4 passed.
			for _, b := range []struct {
				bb *bolt.Bucket
				s  time.Time
			}{{fine, now.Add(-5 * time.Minute)}, {coarse, t0.Add(-time.Hour)}} {
				b.bb.Put(binary.BigEndian.AppendUint64(nil, uint64(b.s.Unix())), agg{runs: 5, failed: 1, sum: 5e6, max: 1e6}.append(nil))
			}
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	a := openArchive(t, path, ArchiveLimits{RunAge: 40 * 24 * time.Hour})
	got := a.Recent("flow-007", 10)
	if len(got) != len(kept) {
		t.Fatalf("%d runs after conversion, want %d", len(got), len(kept))
	}
	for i, r := range got {
		if w := kept[len(kept)-1-i]; !sameRun(r, w) {
			t.Errorf("run %d after conversion:\n got %+v\nwant %+v", i, r, w)
		}
	}
	if g, n := a.Uptime("flow-249", 24*time.Hour, now); g != 4 || n != 5 {
		t.Errorf("24h uptime after conversion: %d/%d, want 4/5", g, n)
	}
	if bs := a.Buckets("flow-000", FineBucket, now.Add(-time.Hour), now); len(bs) != 1 || bs[0].Runs != 5 || bs[0].Mean != time.Second {
		t.Errorf("5m buckets after conversion: %+v", bs)
	}
	_ = a.view(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketFlows) != nil {
			t.Error("the first layout's buckets are still there")
		}
		if h := decodeHead(tx.Bucket(bucketHeads).Get([]byte("flow-007"))); h.bytes == 0 || int64(h.newest) != kept[4].Start.UnixNano() {
			t.Errorf("flow-007's head after conversion: %+v", h)
		}
		return nil
	})
}

// A prune of flows over their share of MaxBytes walks each flow's chain of
// runs: at 2,000 flows of 60 runs, a third of them kept, it allocates at
// most 120 bytes a run walked (measured 69, what bbolt reads of the pages
// it deletes from; was 469, 56 MB: a cursor made by every Get and Delete,
// and a key kept for each run to drop).
func TestArchivePruneAllocates(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector adds allocations")
	}
	a := openArchive(t, filepath.Join(t.TempDir(), "history.db"), ArchiveLimits{})
	const flows = 2000
	l := newFlowsLoad(a, flows)
	a.SetFlows(flows)
	for range 30 {
		l.queue()
		if err := a.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	var total uint64
	_ = a.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketHeads).ForEach(func(_, v []byte) error {
			total += decodeHead(v).bytes
			return nil
		})
	})
	a.lim.MaxBytes = int64(total / 3)
	now := t0.Add(time.Hour)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := a.Prune(now); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	walked := flows * 60
	per := float64(after.TotalAlloc-before.TotalAlloc) / float64(walked)
	t.Logf("a prune keeping a third of %d runs: %.1f MB allocated, %.0f bytes a run", walked, float64(after.TotalAlloc-before.TotalAlloc)/1e6, per)
	if got := len(a.Recent(l.names[7], 100)); got < 15 || got > 21 {
		t.Errorf("%d runs kept of 60, want about 20", got)
	}
	if per > 120 {
		t.Errorf("%.0f bytes allocated a run walked, want at most 120", per)
	}
}
