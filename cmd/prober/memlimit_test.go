package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

const mib = 1 << 20

// TestSetMemoryLimit: the soft limit automemlimit sets from what a cgroup
// reports, and the one line logged, for each case the prober meets.
func TestSetMemoryLimit(t *testing.T) {
	limit := func(n uint64) memlimit.Provider { return memlimit.Limit(n) }
	failing := func(err error) memlimit.Provider { return func() (uint64, error) { return 0, err } }
	tests := []struct {
		name         string
		ratio        float64
		env          map[string]string // GOMEMLIMIT, AUTOMEMLIMIT
		cgroup       memlimit.Provider // nil: must not be called
		set          int64             // the soft limit after; 0 for unchanged
		level, msg   string            // the one line logged; "" for none
		attrs        map[string]any
		errSubstring string
	}{
		{name: "cgroup limit", ratio: 0.9, cgroup: limit(1000 * mib),
			set: 900 * mib, level: "INFO", msg: "memory_limit_set",
			attrs: map[string]any{"limit_bytes": float64(900 * mib), "cgroup_limit_bytes": float64(1000 * mib), "ratio": 0.9}},
		{name: "ratio 1", ratio: 1, cgroup: limit(512 * mib), set: 512 * mib, level: "INFO", msg: "memory_limit_set"},
		{name: "GOMEMLIMIT set", ratio: 0.9, env: map[string]string{"GOMEMLIMIT": "1GiB"},
			level: "INFO", msg: "memory_limit_from_env", attrs: map[string]any{"gomemlimit": "1GiB"}},
		{name: "GOMEMLIMIT off is set too", ratio: 0.9, env: map[string]string{"GOMEMLIMIT": "off"},
			level: "INFO", msg: "memory_limit_from_env"},
		{name: "AUTOMEMLIMIT off", ratio: 0.9, env: map[string]string{"AUTOMEMLIMIT": "off"},
			level: "INFO", msg: "memory_limit_from_env", attrs: map[string]any{"automemlimit": "off"}},
		{name: "AUTOMEMLIMIT ratio wins", ratio: 0.9, env: map[string]string{"AUTOMEMLIMIT": "0.5"}, cgroup: limit(1000 * mib),
			set: 500 * mib, level: "INFO", msg: "memory_limit_set", attrs: map[string]any{"ratio": 0.5}},
		{name: "AUTOMEMLIMIT bad", ratio: 0.9, env: map[string]string{"AUTOMEMLIMIT": "lots"}, cgroup: limit(1000 * mib),
			level: "WARN", msg: "memory_limit_not_set", errSubstring: "AUTOMEMLIMIT"},
		{name: "no limit", ratio: 0.9, cgroup: failing(memlimit.ErrNoLimit), level: "DEBUG", msg: "memory_limit_not_set"},
		{name: "not in a cgroup", ratio: 0.9, cgroup: failing(memlimit.ErrNoCgroup), level: "DEBUG", msg: "memory_limit_not_set"},
		{name: "no cgroups here", ratio: 0.9, cgroup: failing(memlimit.ErrCgroupsNotSupported), level: "DEBUG", msg: "memory_limit_not_set"},
		{name: "0 bytes is no limit", ratio: 0.9, cgroup: limit(0), level: "DEBUG", msg: "memory_limit_not_set"},
		{name: "detection failed", ratio: 0.9, cgroup: failing(errors.New("memory.max: bad")),
			level: "WARN", msg: "memory_limit_not_set", errSubstring: "memory.max: bad"},
		{name: "ratio 0 disables", ratio: 0},
		{name: "ratio above 1 ignored", ratio: 1.5},
		{name: "negative ratio ignored", ratio: -0.5},
	}
	// The process's own limit: each case starts from none and it is put back.
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GOMEMLIMIT", tc.env["GOMEMLIMIT"])
			if v, ok := tc.env["AUTOMEMLIMIT"]; ok {
				t.Setenv("AUTOMEMLIMIT", v)
			}
			debug.SetMemoryLimit(math.MaxInt64)
			var buf bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			cgroup := tc.cgroup
			if cgroup == nil {
				cgroup = func() (uint64, error) { t.Error("cgroup read"); return 0, nil }
			}
			setMemoryLimit(log, tc.ratio, cgroup)

			want := tc.set
			if want == 0 {
				want = math.MaxInt64
			}
			if got := debug.SetMemoryLimit(-1); got != want {
				t.Errorf("soft limit %d, want %d", got, want)
			}
			if tc.msg == "" {
				if buf.Len() > 0 {
					t.Errorf("logged %s, want nothing", buf.String())
				}
				return
			}
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if len(lines) != 1 {
				t.Fatalf("logged %d lines, want 1:\n%s", len(lines), buf.String())
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
				t.Fatal(err)
			}
			if got["level"] != tc.level || got["msg"] != tc.msg {
				t.Errorf("logged %s %s, want %s %s", got["level"], got["msg"], tc.level, tc.msg)
			}
			for k, v := range tc.attrs {
				if got[k] != v {
					t.Errorf("%s = %#v, want %#v", k, got[k], v)
				}
			}
			if tc.errSubstring != "" && !strings.Contains(fmt.Sprint(got["error"]), tc.errSubstring) {
				t.Errorf("error %q lacks %q", got["error"], tc.errSubstring)
			}
		})
	}
}
