package alert

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func openTestDB(t *testing.T) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state", "alerts.db")
	db, err := OpenDB(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db, path
}

func TestOpenDBCreatesPrivateFile(t *testing.T) {
	db, path := openTestDB(t)
	if db.Path() != path {
		t.Errorf("Path() = %q, want %q", db.Path(), path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("file mode %o, want 600", perm)
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if perm := di.Mode().Perm(); perm != 0o700 {
		t.Errorf("dir mode %o, want 700", perm)
	}
}

func TestOpenDBLockedIsAnErrorNotAHang(t *testing.T) {
	old := lockTimeout
	lockTimeout = 200 * time.Millisecond
	t.Cleanup(func() { lockTimeout = old })

	_, path := openTestDB(t)
	start := time.Now()
	db2, err := OpenDB(path) // flock conflicts between two opens, even in one process
	if err == nil {
		db2.Close()
		t.Fatal("second OpenDB of a locked file succeeded")
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "locked") {
		t.Errorf("error %q does not name the file and the lock", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestOpenDBRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts.db")
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = b.Update(func(tx *bolt.Tx) error {
		sb, err := tx.CreateBucketIfNotExists(bucketSchema)
		if err != nil {
			return err
		}
		return sb.Put(keyVersion, []byte(fmt.Sprint(schemaVersion+1)))
	})
	b.Close()
	if err != nil {
		t.Fatal(err)
	}
	db, err := OpenDB(path)
	if err == nil {
		db.Close()
		t.Fatal("opened a newer schema")
	}
	if !strings.Contains(err.Error(), "newer") || !strings.Contains(err.Error(), path) {
		t.Errorf("error %q", err)
	}
}

func TestDBAlertsSilencesMetaPersist(t *testing.T) {
	db, path := openTestDB(t)
	t0 := time.Date(2026, 11, 23, 2, 14, 0, 0, time.UTC)
	err := db.Update(func(tx *Tx) error {
		for _, k := range []string{"b", "a", "c"} {
			if err := tx.PutAlert(&State{Key: k, Rule: "r-" + k, Phase: Firing, ActiveSince: t0, Labels: map[string]string{"flow": k}}); err != nil {
				return err
			}
		}
		if err := tx.DeleteAlert("c"); err != nil {
			return err
		}
		if err := tx.PutSilence(&SilenceRecord{ID: "s2", Matchers: map[string]string{"flow": "checkout"}, Starts: t0, Ends: t0.Add(time.Hour), Comment: "deploy", CreatedBy: "ana", Created: t0}); err != nil {
			return err
		}
		if err := tx.PutSilence(&SilenceRecord{ID: "s1"}); err != nil {
			return err
		}
		if err := tx.PutSilence(&SilenceRecord{ID: "s3"}); err != nil {
			return err
		}
		if err := tx.DeleteSilence("s3"); err != nil {
			return err
		}
		return tx.PutMeta("heartbeat", []byte("42"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *Tx) error { return tx.PutAlert(&State{}) }); err == nil {
		t.Error("PutAlert without a key succeeded")
	}
	if err := db.Update(func(tx *Tx) error { return tx.PutSilence(&SilenceRecord{}) }); err == nil {
		t.Error("PutSilence without an id succeeded")
	}
	db.Close()

	db, err = OpenDB(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *Tx) error {
		all, err := tx.Alerts()
		if err != nil {
			return err
		}
		var keys []string
		for _, s := range all {
			keys = append(keys, s.Key)
		}
		if got := strings.Join(keys, ","); got != "a,b" {
			t.Errorf("Alerts keys = %s, want a,b", got)
		}
		a, err := tx.Alert("a")
		if err != nil || a == nil || a.Rule != "r-a" || !a.ActiveSince.Equal(t0) || a.Labels["flow"] != "a" {
			t.Errorf("Alert(a) = %+v, %v", a, err)
		}
		if none, err := tx.Alert("zzz"); none != nil || err != nil {
			t.Errorf("Alert(missing) = %v, %v; want nil, nil", none, err)
		}
		ss, err := tx.Silences()
		if err != nil {
			return err
		}
		if len(ss) != 2 || ss[0].ID != "s1" || ss[1].ID != "s2" || ss[1].Matchers["flow"] != "checkout" || ss[1].CreatedBy != "ana" || !ss[1].Ends.Equal(t0.Add(time.Hour)) {
			t.Errorf("Silences = %+v", ss)
		}
		v, err := tx.Meta("heartbeat")
		if err != nil || string(v) != "42" {
			t.Errorf("Meta = %q, %v", v, err)
		}
		if v, err := tx.Meta("none"); v != nil || err != nil {
			t.Errorf("Meta(missing) = %q, %v", v, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *Tx) error { return tx.PutMeta("heartbeat", nil) }); err != nil {
		t.Fatal(err)
	}
	_ = db.View(func(tx *Tx) error {
		if v, _ := tx.Meta("heartbeat"); v != nil {
			t.Errorf("PutMeta(nil) left %q", v)
		}
		return nil
	})
}

func TestEnqueueAssignsIDsAndTimes(t *testing.T) {
	db, _ := openTestDB(t)
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ns []*Notification
	err := db.Update(func(tx *Tx) error {
		for i := range 3 {
			n := &Notification{Notifier: "pd", AlertKey: "k", Page: Page{Kind: Trigger, DedupKey: fmt.Sprint(i)}}
			if i == 1 {
				n.Created = created
			}
			if err := tx.Enqueue(n); err != nil {
				return err
			}
			ns = append(ns, n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *Tx) error { return tx.Enqueue(&Notification{}) }); err == nil {
		t.Error("Enqueue without a notifier succeeded")
	}
	for i, n := range ns {
		if n.ID != uint64(i+1) {
			t.Errorf("ID[%d] = %d", i, n.ID)
		}
		if n.Created.IsZero() || !n.NextAttempt.Equal(n.Created) {
			t.Errorf("times[%d] = %v %v", i, n.Created, n.NextAttempt)
		}
	}
	if !ns[1].Created.Equal(created) {
		t.Errorf("Created overwritten: %v", ns[1].Created)
	}
	var pending []*Notification
	_ = db.View(func(tx *Tx) error { pending, err = tx.Pending(); return err })
	if len(pending) != 3 || pending[0].ID != 1 || pending[2].ID != 3 || pending[2].Page.DedupKey != "2" {
		t.Fatalf("Pending = %+v", pending)
	}
}

func TestDeadLettersAreBounded(t *testing.T) {
	db, _ := openTestDB(t)
	const n = deadLetterCap + 5
	err := db.Update(func(tx *Tx) error {
		for range n {
			nt := &Notification{Notifier: "pd", AlertKey: "k"}
			if err := tx.Enqueue(nt); err != nil {
				return err
			}
			if err := tx.bury(nt); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = db.View(func(tx *Tx) error {
		dead, err := tx.Dead()
		if err != nil {
			t.Fatal(err)
		}
		if len(dead) != deadLetterCap || dead[0].ID != 6 || dead[len(dead)-1].ID != n {
			t.Errorf("dead: %d entries, first %d last %d", len(dead), dead[0].ID, dead[len(dead)-1].ID)
		}
		p, _ := tx.Pending()
		if len(p) != 0 {
			t.Errorf("%d still pending", len(p))
		}
		return nil
	})
}

func TestThreadMemory(t *testing.T) {
	db, _ := openTestDB(t)
	err := db.Update(func(tx *Tx) error {
		if err := tx.setThread("slack", "k1", "C1|1.0"); err != nil {
			return err
		}
		return tx.setThread("slack2", "k1", "C2|2.0")
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = db.View(func(tx *Tx) error {
		if th, _ := tx.Thread("slack", "k1"); th != "C1|1.0" {
			t.Errorf("thread = %q", th)
		}
		if th, _ := tx.Thread("slack", "k2"); th != "" {
			t.Errorf("thread of unknown = %q", th)
		}
		return nil
	})
	_ = db.Update(func(tx *Tx) error { return tx.setThread("slack", "k1", "") })
	_ = db.View(func(tx *Tx) error {
		if th, _ := tx.Thread("slack", "k1"); th != "" {
			t.Errorf("cleared thread = %q", th)
		}
		if th, _ := tx.Thread("slack2", "k1"); th != "C2|2.0" {
			t.Errorf("other notifier's thread = %q", th)
		}
		return nil
	})
}
