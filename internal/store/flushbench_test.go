package store

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkArchiveFlush is one flush of 4000 flows' two runs each (4000
// checks/s flushed every 2 s), on a file that already holds a few minutes.
func BenchmarkArchiveFlushFlows(b *testing.B) {
	const flows = 4000
	a := openArchive(b, filepath.Join(b.TempDir(), "history.db"), ArchiveLimits{})
	names := make([]string, flows)
	for i := range names {
		names[i] = fmt.Sprintf("load-%05d", i)
	}
	r := timed("x", t0, time.Second, true, 1)
	tick := 0
	flush := func() {
		for i, n := range names {
			for j := range 2 {
				r.Flow = n
				r.Start = t0.Add(time.Duration(tick)*2*time.Second + time.Duration(j)*time.Second + time.Duration(i)*time.Microsecond)
				a.Observe(r)
			}
		}
		tick++
		if err := a.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	for range 30 {
		flush()
	}
	st0 := a.db.Stats()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		flush()
	}
	b.StopTimer()
	st1 := a.db.Stats()
	st := st1.Sub(&st0)
	b.ReportMetric(float64(st.TxStats.GetWrite())/float64(b.N), "pagewrites/op")
	b.ReportMetric(float64(st.TxStats.GetPageAlloc())/float64(b.N), "pagebytes/op")
}
