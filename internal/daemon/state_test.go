package daemon

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prober-dev/prober/internal/alert"
)

// A corrupt state file stops the daemon unless --fresh-state, which renames
// it aside (kept, never deleted), logs that, and starts with empty state; a
// sound file is used as is with or without the flag. An empty file is
// corrupt, not fresh state.
func TestCorruptStateFreshOnlyWhenTold(t *testing.T) {
	cfg, _ := benchConfig(t, 1, "")
	sound := func(t *testing.T, path string) {
		db, err := alert.OpenDB(path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.Update(func(tx *alert.Tx) error { return tx.PutAlert(&alert.State{Key: "kept", Phase: alert.Firing}) }); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name    string
		content func(t *testing.T, path string)
		fresh   bool
		wantErr bool // a corrupt-state error
		aside   bool // the file renamed aside
		kept    bool // the stored alert still there
	}{
		{"empty", func(t *testing.T, p string) { os.WriteFile(p, nil, 0o600) }, false, true, false, false},
		{"garbage", func(t *testing.T, p string) { os.WriteFile(p, bytes.Repeat([]byte{0xa5}, 5<<12), 0o600) }, false, true, false, false},
		{"empty, --fresh-state", func(t *testing.T, p string) { os.WriteFile(p, nil, 0o600) }, true, false, true, false},
		{"garbage, --fresh-state", func(t *testing.T, p string) { os.WriteFile(p, bytes.Repeat([]byte{0xa5}, 5<<12), 0o600) }, true, false, true, false},
		{"sound", sound, false, false, false, true},
		{"sound, --fresh-state", sound, true, false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "prober.db")
			tc.content(t, path)
			before, _ := os.ReadFile(path)
			var log bytes.Buffer
			d := &Daemon{opts: Options{StateDir: dir, FreshState: tc.fresh}, log: slog.New(slog.NewJSONHandler(&log, nil)), reg: prometheus.NewRegistry()}
			a, err := d.openAlerting(cfg)
			if tc.wantErr {
				if !errors.Is(err, alert.ErrCorrupt) {
					t.Fatalf("openAlerting: %v, want a corrupt-state error", err)
				}
				if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
					t.Error("the corrupt file was changed")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer a.db.Close()
			asides, _ := filepath.Glob(path + ".corrupt-*")
			if got := len(asides) == 1; got != tc.aside {
				t.Fatalf("moved aside: %v, want %v", asides, tc.aside)
			}
			if tc.aside {
				if moved, _ := os.ReadFile(asides[0]); !bytes.Equal(moved, before) {
					t.Error("the file moved aside is not the corrupt file")
				}
				if !strings.Contains(log.String(), `"msg":"alert_state_moved_aside"`) || !strings.Contains(log.String(), asides[0]) {
					t.Errorf("no log line naming where the file went:\n%s", log.String())
				}
			}
			var st *alert.State
			if err := a.db.View(func(tx *alert.Tx) error { st, err = tx.Alert("kept"); return err }); err != nil {
				t.Fatal(err)
			}
			if (st != nil) != tc.kept {
				t.Errorf("stored alert kept: %v, want %v", st != nil, tc.kept)
			}
		})
	}
}
