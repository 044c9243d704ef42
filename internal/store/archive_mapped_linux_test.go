package store

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// mappedRSS is how much of path's mappings in this process is resident
// (the Rss: lines of /proc/self/smaps), bytes.
func mappedRSS(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skip("no /proc/self/smaps:", err)
	}
	defer f.Close()
	var total int64
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if fields := strings.Fields(line); len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			in = fields[len(fields)-1] == path
			continue
		}
		if kb, ok := strings.CutPrefix(line, "Rss:"); ok && in {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(kb), " kB"), 10, 64)
			total += n << 10
		}
	}
	return total
}

// The archive's file map does not stay resident: after reading every run
// back (which touches the whole file) and a flush, what of the file counts
// in the process's RSS is what that flush touched, not the file. Before,
// RssFile grew with the file (64 MB after 3 minutes at 10,000 flows).
func TestArchiveMapNotResident(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.db")
	a := openArchive(t, path, ArchiveLimits{RunAge: 40 * 24 * time.Hour, MaxBytes: 1 << 30})
	const flows, each = 200, 30
	now := t0.Add(time.Hour)
	for i := range flows * each {
		a.Observe(timed(fmt.Sprintf("flow-%03d", i%flows), now.Add(time.Duration(i)*time.Second), time.Second, true, i))
	}
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range flows {
		if got := a.Recent(fmt.Sprintf("flow-%03d", i), each); len(got) != each {
			t.Fatalf("flow-%03d: %d runs back, want %d", i, len(got), each)
		}
	}
	a.Observe(timed("flow-000", now.Add(flows*each*time.Second), time.Second, true, flows*each))
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}
	rss := mappedRSS(t, path)
	t.Logf("file %d KB, resident of its map after the flush %d KB", st.Size()>>10, rss>>10)
	if st.Size() < 1<<20 {
		t.Fatalf("file %d bytes: too small for the test to tell", st.Size())
	}
	if rss > st.Size()/8 {
		t.Fatalf("%d KB of the %d KB file resident after a flush of one run, want at most an eighth", rss>>10, st.Size()>>10)
	}
	// Still readable after its pages were given back.
	if got := a.Recent("flow-199", each); len(got) != each {
		t.Fatalf("after the release: %d runs back, want %d", len(got), each)
	}
}

// Opening reads every page of a file of up to maxCheckedArchive (bbolt's
// check): none of them stays resident after the open (was: all of them,
// until the first flush).
func TestArchiveOpenNotResident(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.db")
	a, err := OpenArchive(path, ArchiveLimits{RunAge: 40 * 24 * time.Hour, MaxBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	now := t0.Add(time.Hour)
	for i := range 6000 {
		a.Observe(timed(fmt.Sprintf("flow-%03d", i%200), now.Add(time.Duration(i)*time.Second), time.Second, true, i))
	}
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}
	a.Close()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	a = openArchive(t, path, ArchiveLimits{RunAge: 40 * 24 * time.Hour, MaxBytes: 1 << 30})
	rss := mappedRSS(t, path)
	t.Logf("file %d KB, resident of its map after the open %d KB", st.Size()>>10, rss>>10)
	if st.Size() < 1<<20 {
		t.Fatalf("file %d bytes: too small for the test to tell", st.Size())
	}
	if rss > st.Size()/8 {
		t.Fatalf("%d KB of the %d KB file resident after the open, want at most an eighth", rss>>10, st.Size()>>10)
	}
	if got := a.Recent("flow-199", 30); len(got) != 30 {
		t.Fatalf("after the open: %d runs back, want 30", len(got))
	}
}
