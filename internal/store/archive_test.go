package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/result"
)

func openArchive(t testing.TB, path string, lim ArchiveLimits) *Archive {
	t.Helper()
	a, err := OpenArchive(path, lim)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// timed is a run of flow that ends d after start (mkRun's, with another
// duration).
func timed(flow string, start time.Time, d time.Duration, ok bool, i int) *result.Run {
	r := mkRun("eu", start, ok, fmt.Sprintf("%032x", i+1))
	r.Flow, r.Duration, r.ID = flow, d, fmt.Sprintf("%016x", i+1)
	r.Labels = map[string]string{"team": "payments"}
	return r
}

// uptimes are a flow's three uptime figures as "good/total".
func uptimes(a *Archive, flow string, now time.Time) string {
	out := ""
	for _, w := range []time.Duration{24 * time.Hour, 7 * 24 * time.Hour, 30 * 24 * time.Hour} {
		g, n := a.Uptime(flow, w, now)
		out += fmt.Sprintf("%d/%d ", g, n)
	}
	return out
}

// A restart (close, reopen on the same file) keeps the uptime figures and
// the runs, exactly.
func TestArchiveRestartKeepsHistory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.db")
	a, err := OpenArchive(path, ArchiveLimits{RunAge: 40 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	now := t0.Add(30 * 24 * time.Hour)
	// A known sequence: 20 days ago 10 runs (4 failed), 3 days ago 6 runs
	// (1 failed), in the last hour 5 runs (2 failed, one of them retried
	// and superseded by a passing retry: not final, not counted).
	var kept []*result.Run
	add := func(back time.Duration, n, failed int) {
		for i := range n {
			kept = append(kept, timed("checkout", now.Add(-back).Add(time.Duration(i)*time.Minute), 2*time.Second, i >= failed, len(kept)))
		}
	}
	add(20*24*time.Hour, 10, 4)
	add(3*24*time.Hour, 6, 1)
	add(time.Hour, 5, 2)
	kept[len(kept)-4].Retried = true // the last hour's second failure: superseded by its retry
	for _, r := range kept[:len(kept)-2] {
		a.Observe(r)
	}
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, r := range kept[len(kept)-2:] {
		a.Observe(r) // queued: counted before they are written
	}
	// 24h: the last hour's 4 final runs, 1 failed; 7d: and 3 days ago's 6,
	// 1 failed; 30d: and 20 days ago's 10, 4 failed.
	const want = "3/4 8/10 14/20 "
	if got := uptimes(a, "checkout", now); got != want {
		t.Fatalf("uptime before restart: %s, want %s", got, want)
	}
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b := openArchive(t, path, ArchiveLimits{RunAge: 40 * 24 * time.Hour})
	if got := uptimes(b, "checkout", now); got != want {
		t.Errorf("uptime after restart: %s, want %s", got, want)
	}
	runs := b.Recent("checkout", 100)
	if len(runs) != len(kept) {
		t.Fatalf("%d runs after restart, want %d", len(runs), len(kept))
	}
	for i, r := range runs {
		if w := kept[len(kept)-1-i]; !sameRun(r, w) {
			t.Errorf("run %d after restart:\n got %+v\nwant %+v", i, r, w)
		}
	}
	if got := b.Recent("checkout", 3); len(got) != 3 || got[0].TraceID != kept[len(kept)-1].TraceID {
		t.Errorf("Recent(3) = %d runs, newest %v", len(got), got)
	}
	if got := uptimes(b, "other", now); got != "0/0 0/0 0/0 " {
		t.Errorf("unknown flow: %s", got)
	}
}

// Runs count in the bucket holding their end; windows are whole buckets.
func TestArchiveBuckets(t *testing.T) {
	base := t0.Add(12 * time.Hour) // aligned to 5m and 1h
	tests := []struct {
		name  string
		ends  []time.Duration // run ends after base (each run takes 1s)
		fails []bool
		width time.Duration
		want  string // bucket start offsets from base: runs/failed mean max
	}{
		{"same 5m bucket", []time.Duration{time.Minute, 4*time.Minute + 59*time.Second}, []bool{false, true}, FineBucket,
			"0s:2/1 1s 1s"},
		{"end on the edge opens the next bucket", []time.Duration{4*time.Minute + 59*time.Second, 5 * time.Minute}, nil, FineBucket,
			"0s:1/0 1s 1s 5m0s:1/0 1s 1s"},
		{"hourly", []time.Duration{59 * time.Minute, time.Hour, 61 * time.Minute}, []bool{true, false, true}, CoarseBucket,
			"0s:1/1 1s 1s 1h0m0s:2/1 1s 1s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := openArchive(t, filepath.Join(t.TempDir(), "h.db"), ArchiveLimits{})
			for i, e := range tc.ends {
				failed := tc.fails != nil && tc.fails[i]
				a.Observe(timed("f", base.Add(e-time.Second), time.Second, !failed, i))
			}
			check := func(when string) {
				got := ""
				for _, b := range a.Buckets("f", tc.width, base, base.Add(2*time.Hour)) {
					if got != "" {
						got += " "
					}
					got += fmt.Sprintf("%s:%d/%d %s %s", b.Start.Sub(base), b.Runs, b.Failed, b.Mean, b.Max)
				}
				if got != tc.want {
					t.Errorf("%s: buckets %q, want %q", when, got, tc.want)
				}
			}
			check("queued")
			if err := a.Flush(); err != nil {
				t.Fatal(err)
			}
			check("flushed")
			// A second batch into the same buckets adds to them.
			for i, e := range tc.ends {
				failed := tc.fails != nil && tc.fails[i]
				a.Observe(timed("f", base.Add(e-time.Second), time.Second, !failed, 100+i))
			}
			if err := a.Flush(); err != nil {
				t.Fatal(err)
			}
			total := 0
			for _, b := range a.Buckets("f", tc.width, base, base.Add(2*time.Hour)) {
				total += b.Runs
			}
			if total != 2*len(tc.ends) {
				t.Errorf("after a second batch: %d runs, want %d", total, 2*len(tc.ends))
			}
		})
	}
}

func TestArchiveMeanMax(t *testing.T) {
	a := openArchive(t, filepath.Join(t.TempDir(), "h.db"), ArchiveLimits{})
	base := t0.Add(time.Hour)
	for i, d := range []time.Duration{100 * time.Millisecond, 300 * time.Millisecond, 2 * time.Second} {
		a.Observe(timed("f", base.Add(time.Duration(i)*time.Second), d, true, i))
	}
	a.Flush()
	a.Observe(timed("f", base.Add(time.Minute), 600*time.Millisecond, true, 9)) // queued
	bs := a.Buckets("f", FineBucket, base, base)
	if len(bs) != 1 || bs[0].Runs != 4 || bs[0].Mean != 750*time.Millisecond || bs[0].Max != 2*time.Second {
		t.Errorf("buckets %+v, want 4 runs, mean 750ms, max 2s", bs)
	}
}

func TestArchivePrune(t *testing.T) {
	now := t0.Add(40 * 24 * time.Hour)
	t.Run("age", func(t *testing.T) {
		a := openArchive(t, filepath.Join(t.TempDir(), "h.db"), ArchiveLimits{RunAge: 2 * time.Hour})
		for i, back := range []time.Duration{35 * 24 * time.Hour, 29 * 24 * time.Hour, 25 * time.Hour, 3 * time.Hour, time.Hour} {
			a.Observe(timed("f", now.Add(-back), time.Second, true, i))
		}
		a.Flush()
		if err := a.Prune(now); err != nil {
			t.Fatal(err)
		}
		if rs := a.Recent("f", 10); len(rs) != 1 || !rs[0].Start.Equal(now.Add(-time.Hour)) {
			t.Errorf("runs after pruning to 2h: %d", len(rs))
		}
		// 5m buckets: only the last day's; hourly: the last 30 days'.
		if bs := a.Buckets("f", FineBucket, now.Add(-40*24*time.Hour), now); len(bs) != 2 {
			t.Errorf("%d 5m buckets kept, want 2 (3h and 1h ago)", len(bs))
		}
		if bs := a.Buckets("f", CoarseBucket, now.Add(-40*24*time.Hour), now); len(bs) != 4 {
			t.Errorf("%d hourly buckets kept, want 4 (not 35 days ago)", len(bs))
		}
	})
	t.Run("size", func(t *testing.T) {
		a := openArchive(t, filepath.Join(t.TempDir(), "h.db"), ArchiveLimits{MaxBytes: 10_000})
		a.SetFlows(2) // 5,000 bytes each
		for i := range 100 {
			a.Observe(timed("f", now.Add(-time.Hour+time.Duration(i)*time.Second), time.Second, true, i))
			a.Observe(timed("g", now.Add(-time.Hour+time.Duration(i)*time.Second), time.Second, true, 1000+i))
		}
		a.Flush()
		if err := a.Prune(now); err != nil {
			t.Fatal(err)
		}
		for _, flow := range []string{"f", "g"} {
			rs := a.Recent(flow, 1000)
			if len(rs) == 0 || len(rs) >= 100 {
				t.Fatalf("%s: %d runs kept of 100 within 5,000 bytes", flow, len(rs))
			}
			enc := 0
			for _, r := range rs {
				enc += len(appendRun(nil, r)) + 20
			}
			if enc > 5_000+600 {
				t.Errorf("%s: %d runs of about %d bytes kept, over the share", flow, len(rs), enc)
			}
			if want := now.Add(-time.Hour + 99*time.Second); !rs[0].Start.Equal(want) {
				t.Errorf("%s: newest kept %v, want %v (the newest are kept)", flow, rs[0].Start, want)
			}
		}
		// Uptime is not the runs': the buckets keep counting all 100.
		if g, n := a.Uptime("f", 24*time.Hour, now); g != 100 || n != 100 {
			t.Errorf("uptime after size pruning: %d/%d, want 100/100", g, n)
		}
	})
}

// A file that is not a sound archive is ErrBadArchive, never a panic; a
// held one is ErrArchiveLocked.
func TestArchiveCorrupt(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	a, err := OpenArchive(good, ArchiveLimits{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		a.Observe(timed("f", t0.Add(time.Duration(i)*time.Minute), time.Second, true, i))
	}
	a.Flush()
	a.Close()
	sound, _ := os.ReadFile(good)
	garbage := make([]byte, 64<<10)
	for i := range garbage {
		garbage[i] = byte(i * 7)
	}
	damaged := append([]byte(nil), sound...)
	for i := 4096 * 2; i < len(damaged); i++ { // every page but the two meta pages
		damaged[i] ^= 0x5a
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"garbage", garbage},
		{"truncated", sound[:4096+100]},
		{"damaged pages", damaged},
		{"text", []byte("not a database\n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name+".db")
			os.WriteFile(p, tc.data, 0o600)
			a, err := OpenArchive(p, ArchiveLimits{})
			if !errors.Is(err, ErrBadArchive) {
				if a != nil {
					a.Close()
				}
				t.Fatalf("OpenArchive = %v, want ErrBadArchive", err)
			}
		})
	}
	t.Run("locked", func(t *testing.T) {
		a := openArchive(t, good, ArchiveLimits{})
		_ = a
		_, err := OpenArchive(good, ArchiveLimits{})
		if !errors.Is(err, ErrArchiveLocked) {
			t.Fatalf("second open = %v, want ErrArchiveLocked", err)
		}
	})
}

// Observe never waits: a full queue drops (and counts) runs.
func TestArchiveQueueBounded(t *testing.T) {
	a := openArchive(t, filepath.Join(t.TempDir(), "h.db"), ArchiveLimits{})
	r := timed("f", t0, time.Second, true, 1)
	for range maxPending + 5 {
		a.Observe(r)
	}
	if a.Dropped() != 5 {
		t.Errorf("dropped %d, want 5", a.Dropped())
	}
}

// The write path as the runner pays it (Observe: encode and queue), next
// to the Store's Observe; and a flush's cost a run.
func BenchmarkArchiveObserve(b *testing.B) {
	a := openArchive(b, filepath.Join(b.TempDir(), "h.db"), ArchiveLimits{})
	runs := make([]*result.Run, 100)
	for i := range runs {
		runs[i] = mkRun("a", t0, i%10 != 0, "4bf92f3577b34da6a3ce929d0e0e4736")
		runs[i].Flow = fmt.Sprint("flow-", i%10)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r := runs[i%len(runs)]
		r.Start = at(time.Duration(i) * time.Second)
		a.Observe(r)
		if i%1000 == 999 {
			b.StopTimer()
			a.Flush()
			b.StartTimer()
		}
	}
}

func BenchmarkArchiveFlush(b *testing.B) {
	a := openArchive(b, filepath.Join(b.TempDir(), "h.db"), ArchiveLimits{})
	const batch = 1000
	b.ReportMetric(batch, "runs/op")
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		for j := range batch {
			r := mkRun("a", at(time.Duration(i*batch+j)*time.Second), true, "4bf92f3577b34da6a3ce929d0e0e4736")
			r.Flow = fmt.Sprint("flow-", j%100)
			a.Observe(r)
		}
		b.StartTimer()
		if err := a.Flush(); err != nil {
			b.Fatal(err)
		}
	}
}

// What the status page pays a flow: its 24h uptime from a full day of
// 5-minute buckets.
func BenchmarkArchiveUptime24h(b *testing.B) {
	a := openArchive(b, filepath.Join(b.TempDir(), "h.db"), ArchiveLimits{})
	now := t0.Add(48 * time.Hour)
	for i := range 24 * 60 {
		a.Observe(timed("f", now.Add(-time.Duration(i)*time.Minute), time.Second, i%50 != 0, i))
	}
	if err := a.Flush(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, n := a.Uptime("f", 24*time.Hour, now); n == 0 {
			b.Fatal("no runs")
		}
	}
}

// Up to a day, Uptime reads whole hours from the hourly buckets and the
// edges from the 5-minute ones: the same figures as all 5-minute ones.
func TestArchiveUptimeSplit(t *testing.T) {
	a := openArchive(t, filepath.Join(t.TempDir(), "h.db"), ArchiveLimits{})
	base := t0.Add(24 * time.Hour)
	for i := range 30 * 60 / 7 {
		a.Observe(timed("f", base.Add(time.Duration(i)*7*time.Minute), 3*time.Second, i%5 != 0, i))
	}
	a.Flush()
	a.Observe(timed("f", base.Add(29*time.Hour+59*time.Minute), time.Second, false, 9999)) // queued
	for _, at := range []time.Duration{29 * time.Hour, 29*time.Hour + 5*time.Minute, 29*time.Hour + 7*time.Minute + 13*time.Second,
		29*time.Hour + 59*time.Minute + 59*time.Second, 27*time.Hour + 30*time.Minute} {
		for _, w := range []time.Duration{2 * time.Minute, 5 * time.Minute, 55 * time.Minute, time.Hour, 90 * time.Minute,
			2*time.Hour + 5*time.Minute, 24 * time.Hour} {
			now := base.Add(at)
			var wg, wn int
			for _, b := range a.Buckets("f", FineBucket, now.Add(-w), now) {
				wg += b.Runs - b.Failed
				wn += b.Runs
			}
			if g, n := a.Uptime("f", w, now); g != wg || n != wn || (n == 0 && w >= time.Hour) {
				t.Errorf("at +%s, window %s: %d/%d, want %d/%d (all 5-minute buckets)", at, w, g, n, wg, wn)
			}
		}
	}
}
