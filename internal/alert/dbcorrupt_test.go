package alert

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// validDB returns the bytes of a state file with firing alerts (enough for
// branch pages), silences and pending notifications.
var validDB = sync.OnceValues(func() ([]byte, error) {
	dir, err := os.MkdirTemp("", "prober-validdb")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "prober.db")
	db, err := OpenDB(path)
	if err != nil {
		return nil, err
	}
	t0 := time.Date(2026, 12, 7, 11, 0, 0, 0, time.UTC)
	err = db.Update(func(tx *Tx) error {
		for i := range 60 {
			k := fmt.Sprintf("checkout-%02d", i)
			if err := tx.PutAlert(&State{Key: k, Rule: "checkout_failing", Phase: Firing, ActiveSince: t0, Severity: "critical",
				Labels: map[string]string{"flow": k, "region": "eu-west-1", "team": "payments"}, Notified: []string{"pagerduty"}}); err != nil {
				return err
			}
		}
		for i := range 10 {
			if err := tx.PutSilence(&SilenceRecord{ID: fmt.Sprintf("s%d", i), Matchers: map[string]string{"flow": "checkout"},
				Starts: t0, Ends: t0.Add(time.Hour), Comment: "deploy", CreatedBy: "ana", Created: t0}); err != nil {
				return err
			}
		}
		for i := range 20 {
			if err := tx.Enqueue(&Notification{Notifier: "pagerduty", AlertKey: fmt.Sprintf("checkout-%02d", i)}); err != nil {
				return err
			}
		}
		return tx.PutMeta("heartbeat", []byte("42"))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return os.ReadFile(path)
})

func mustValidDB(t testing.TB) []byte {
	t.Helper()
	b, err := validDB()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// openBytes writes b as a state file and opens it, turning a panic into a
// test failure (a fault inside bbolt kills the test binary: a failure too).
func openBytes(t testing.TB, b []byte) (db *DB, err error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "prober.db")
	if b != nil {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("OpenDB panicked: %v", r)
		}
	}()
	return OpenDB(path)
}

func TestOpenDBCorruptFiles(t *testing.T) {
	good := mustValidDB(t)
	const ps = 4096
	if len(good) < 8*ps {
		t.Fatalf("the valid file has %d bytes, want several pages", len(good))
	}
	edit := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(b []byte) {
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
	}
	tests := []struct {
		name   string
		file   []byte
		want   string // in the reason; "" for a good open
		either bool   // a good open or a CorruptError (never a panic or another error)
	}{
		{"missing", nil, "", false},
		{"sound", good, "", false},
		{"empty", []byte{}, "the file is empty (0 bytes)", false},
		{"truncated to one page", good[:ps], "truncated", false},
		{"truncated mid-file", good[:len(good)/2], "truncated", false},
		{"random bytes over pages 2-5", edit(func(b []byte) []byte { random(b[2*ps : 6*ps]); return b }), "page", false},
		{"random bytes over the last pages", edit(func(b []byte) []byte { random(b[len(b)-3*ps:]); return b }), "", true},
		{"both meta pages garbage", edit(func(b []byte) []byte { random(b[:2*ps]); return b }), "no valid meta page", false},
		{"a branch pointing at itself", edit(func(b []byte) []byte { return selfLoop(t, b, ps) }), "referenced twice", false},
		{"a page id past the file", edit(func(b []byte) []byte { return pointPast(t, b, ps) }), "out of range", false},
		{"an alert's JSON damaged", edit(func(b []byte) []byte {
			i := strings.Index(string(b), `"rule":"checkout_failing"`)
			b[i] = '}'
			return b
		}), "decode alert", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, err := openBytes(t, tc.file)
			if tc.want == "" && !tc.either {
				if err != nil {
					t.Fatalf("OpenDB: %v", err)
				}
				db.Close()
				return
			}
			if err == nil {
				db.Close()
				if tc.either {
					return // the last pages may all be free
				}
				t.Fatal("OpenDB of a damaged file succeeded")
			}
			var ce *CorruptError
			if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("OpenDB: %v (%T), want a CorruptError", err, err)
			}
			if !strings.Contains(ce.Reason, tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q, want one line with %q", err, tc.want)
			}
		})
	}
}

// pageOf returns the header fields of page id.
func pageOf(b []byte, ps, id int) (flags, count uint16) {
	p := b[id*ps:]
	return binary.NativeEndian.Uint16(p[8:]), binary.NativeEndian.Uint16(p[10:])
}

// firstBranch returns the id of the first branch page.
func firstBranch(t *testing.T, b []byte, ps int) int {
	for id := 2; id < len(b)/ps; id++ {
		if f, n := pageOf(b, ps, id); f == branchPageFlag && n > 0 && binary.NativeEndian.Uint64(b[id*ps:]) == uint64(id) {
			return id
		}
	}
	t.Fatal("no branch page in the valid file")
	return 0
}

// selfLoop points a branch page's first child at the branch itself: bbolt
// would recurse until the stack overflows (fatal, not a panic).
func selfLoop(t *testing.T, b []byte, ps int) []byte {
	id := firstBranch(t, b, ps)
	binary.NativeEndian.PutUint64(b[id*ps+pageHeaderSize+8:], uint64(id))
	return b
}

// pointPast points a branch's child far past the file: bbolt would read
// outside its mmap (a fault).
func pointPast(t *testing.T, b []byte, ps int) []byte {
	id := firstBranch(t, b, ps)
	binary.NativeEndian.PutUint64(b[id*ps+pageHeaderSize+8:], 1<<40)
	return b
}

// FuzzOpenDB opens valid state files with bytes flipped and cut: OpenDB
// returns a database that works, or an error; it never panics or crashes,
// and a file it opens can be read and written.
func FuzzOpenDB(f *testing.F) {
	f.Add([]byte{}, uint32(0))
	f.Add([]byte{0, 0x40, 0, 0, 0xff}, uint32(0))                   // page 4's id
	f.Add([]byte{8, 0x30, 0, 0, 0x03}, uint32(0))                   // page 3's type
	f.Add([]byte{10, 0x30, 0, 0, 0xff}, uint32(0))                  // page 3's count
	f.Add([]byte{24, 0x50, 0, 0, 0x07}, uint32(0))                  // an element of page 5
	f.Add([]byte{0x20, 0, 0, 0, 0x01}, uint32(0))                   // meta 0
	f.Add([]byte{}, uint32(3*4096))                                 // truncated
	f.Add([]byte{0x20, 0, 0, 0, 1, 0x20, 0x10, 0, 0, 1}, uint32(0)) // both metas
	good := mustValidDB(f)
	lockTimeout = 50 * time.Millisecond
	boltNoSync = true // thousands of opens: fsync is not what is tested
	f.Fuzz(func(t *testing.T, flips []byte, cut uint32) {
		b := append([]byte(nil), good...)
		for ; len(flips) >= 5; flips = flips[5:] {
			off := int(binary.NativeEndian.Uint32(flips)) % len(b)
			b[off] ^= flips[4] | 1
		}
		if cut > 0 && int(cut) < len(b) {
			b = b[:cut]
		}
		db, err := openBytes(t, b)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("a multi-line error: %q", err)
			}
			return
		}
		defer db.Close()
		err = db.Update(func(tx *Tx) error {
			if _, err := tx.Alerts(); err != nil {
				return err
			}
			if _, err := tx.Silences(); err != nil {
				return err
			}
			for i := range 30 {
				if err := tx.PutAlert(&State{Key: fmt.Sprintf("new-%d", i), Rule: "r"}); err != nil {
					return err
				}
			}
			if err := tx.DeleteAlert("checkout-07"); err != nil {
				return err
			}
			return tx.Enqueue(&Notification{Notifier: "slack", AlertKey: "new-1"})
		})
		if err != nil {
			t.Fatalf("a file OpenDB accepted fails in use: %v", err)
		}
	})
}

// MoveAside renames with a timestamp and never over an earlier one.
func TestMoveAsideNeverOverwrites(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "prober.db")
	at := time.Date(2026, 12, 7, 11, 58, 12, 0, time.UTC)
	var got []string
	for i, content := range []string{"first", "second"} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		to, err := MoveAside(path, at)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(to); string(b) != content {
			t.Errorf("move %d: %s holds %q, want %q", i, to, b, content)
		}
		got = append(got, filepath.Base(to))
	}
	want := []string{"prober.db.corrupt-20261207T115812Z", "prober.db.corrupt-20261207T115812Z-2"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("moved to %v, want %v", got, want)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the state file is still there: %v", err)
	}
}
