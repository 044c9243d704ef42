package memlimit

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const (
	v1Unlimited = "9223372036854771712\n" // what v1 reports for no limit
	mib         = 1 << 20
)

func TestDetect(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string // relative to the fake root
		limit   int64
		file    string // relative to the fake root
		errWant []string
		errIs   error
	}{
		{name: "v2 in a cgroup namespace", files: map[string]string{
			"proc/self/cgroup":           "0::/\n",
			"sys/fs/cgroup/memory.max":   "536870912\n",
			"sys/fs/cgroup/cgroup.procs": "1\n",
		}, limit: 512 * mib, file: "sys/fs/cgroup/memory.max"},
		{name: "v2 nested, a parent's limit smaller", files: map[string]string{
			"proc/self/cgroup":                           "0::/kubepods/pod1/ctr\n",
			"sys/fs/cgroup/kubepods/pod1/ctr/memory.max": "max\n",
			"sys/fs/cgroup/kubepods/pod1/memory.max":     "268435456\n",
			"sys/fs/cgroup/kubepods/memory.max":          "1073741824\n",
		}, limit: 256 * mib, file: "sys/fs/cgroup/kubepods/pod1/memory.max"},
		{name: "v2 nested, its own limit smallest", files: map[string]string{
			"proc/self/cgroup": "0::/system.slice/prober.service\n",
			"sys/fs/cgroup/system.slice/prober.service/memory.max": "134217728\n",
			"sys/fs/cgroup/system.slice/memory.max":                "max\n",
		}, limit: 128 * mib, file: "sys/fs/cgroup/system.slice/prober.service/memory.max"},
		{name: "v2 path not mounted, the mount's root read", files: map[string]string{
			"proc/self/cgroup":         "0::/system.slice/docker-abc.scope\n",
			"sys/fs/cgroup/memory.max": "104857600",
		}, limit: 100 * mib, file: "sys/fs/cgroup/memory.max"},
		{name: "v2 outside the namespace stays inside the mount", files: map[string]string{
			"proc/self/cgroup":         "0::/../../etc\n",
			"sys/fs/cgroup/memory.max": "104857600\n",
		}, limit: 100 * mib, file: "sys/fs/cgroup/memory.max"},
		{name: "v2 max", files: map[string]string{
			"proc/self/cgroup":         "0::/\n",
			"sys/fs/cgroup/memory.max": "max\n",
		}},
		{name: "v1 limit", files: map[string]string{
			"proc/self/cgroup":                           "12:pids:/docker/abc\n4:memory:/docker/abc\n1:name=systemd:/docker/abc\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes": "209715200\n",
		}, limit: 200 * mib, file: "sys/fs/cgroup/memory/memory.limit_in_bytes"},
		{name: "v1 nested, hybrid with an empty v2", files: map[string]string{
			"proc/self/cgroup": "4:memory:/process_api/x\n0::/\n",
			"sys/fs/cgroup/memory/process_api/x/memory.limit_in_bytes": "314572800\n",
			"sys/fs/cgroup/memory/process_api/memory.limit_in_bytes":   v1Unlimited,
			"sys/fs/cgroup/memory/memory.limit_in_bytes":               v1Unlimited,
			"sys/fs/cgroup/unified/cgroup.procs":                       "1\n",
		}, limit: 300 * mib, file: "sys/fs/cgroup/memory/process_api/x/memory.limit_in_bytes"},
		{name: "v1 controllers joined", files: map[string]string{
			"proc/self/cgroup": "3:cpuacct,memory:/a\n",
			"sys/fs/cgroup/memory/a/memory.limit_in_bytes": "1048576\n",
		}, limit: mib, file: "sys/fs/cgroup/memory/a/memory.limit_in_bytes"},
		{name: "v1 sentinel is unlimited", files: map[string]string{
			"proc/self/cgroup":                           "4:memory:/\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes": v1Unlimited,
		}},
		{name: "nothing there", files: map[string]string{}},
		{name: "no /proc, the roots read", files: map[string]string{
			"sys/fs/cgroup/memory.max": "1048576\n",
		}, limit: mib, file: "sys/fs/cgroup/memory.max"},
		{name: "0 bytes is no limit", files: map[string]string{
			"proc/self/cgroup":         "0::/\n",
			"sys/fs/cgroup/memory.max": "0\n",
		}},
		{name: "garbage memory.max", files: map[string]string{
			"proc/self/cgroup":         "0::/\n",
			"sys/fs/cgroup/memory.max": "lots\n",
		}, errWant: []string{"sys/fs/cgroup/memory.max", `"lots"`}},
		{name: "negative limit_in_bytes", files: map[string]string{
			"proc/self/cgroup":                           "4:memory:/\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes": "-1\n",
		}, errWant: []string{"memory.limit_in_bytes", `"-1"`}},
		{name: "overflowing memory.max", files: map[string]string{
			"sys/fs/cgroup/memory.max": "99999999999999999999\n",
		}, errWant: []string{"sys/fs/cgroup/memory.max"}, errIs: strconv.ErrRange},
		{name: "garbage /proc/self/cgroup", files: map[string]string{
			"proc/self/cgroup":         "0::/\nnonsense\n",
			"sys/fs/cgroup/memory.max": "1048576\n",
		}, errWant: []string{"proc/self/cgroup:2", "nonsense"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for name, content := range tc.files {
				p := filepath.Join(root, filepath.FromSlash(name))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			limit, file, err := Detect(root)
			if len(tc.errWant) > 0 {
				if err == nil {
					t.Fatalf("no error; got %d from %q", limit, file)
				}
				for _, s := range tc.errWant {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q lacks %q", err, s)
					}
				}
				if tc.errIs != nil && !errors.Is(err, tc.errIs) {
					t.Errorf("error %q is not %v", err, tc.errIs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := ""
			if tc.file != "" {
				want = filepath.Join(root, filepath.FromSlash(tc.file))
			}
			if limit != tc.limit || file != want {
				t.Errorf("got %d from %q, want %d from %q", limit, file, tc.limit, want)
			}
		})
	}
}

func TestApply(t *testing.T) {
	detected := func(limit int64, file string, err error) func() (int64, string, error) {
		return func() (int64, string, error) { return limit, file, err }
	}
	tests := []struct {
		name       string
		ratio      float64
		gomemlimit string
		detect     func() (int64, string, error)
		set        int64  // the soft limit set; 0 for no call
		level, msg string // the one line logged; "" for none
		attrs      map[string]any
	}{
		{name: "cgroup limit", ratio: 0.9, detect: detected(1000*mib, "/sys/fs/cgroup/memory.max", nil),
			set: 900 * mib, level: "INFO", msg: "memory_limit_set",
			attrs: map[string]any{"limit_bytes": float64(900 * mib), "cgroup_limit_bytes": float64(1000 * mib),
				"file": "/sys/fs/cgroup/memory.max", "ratio": 0.9}},
		{name: "ratio 1", ratio: 1, detect: detected(512*mib, "f", nil), set: 512 * mib, level: "INFO", msg: "memory_limit_set"},
		{name: "GOMEMLIMIT set", ratio: 0.9, gomemlimit: "1GiB", detect: detected(512*mib, "f", nil),
			level: "INFO", msg: "memory_limit_from_env", attrs: map[string]any{"gomemlimit": "1GiB"}},
		{name: "GOMEMLIMIT off is set too", ratio: 0.9, gomemlimit: "off", detect: detected(512*mib, "f", nil),
			level: "INFO", msg: "memory_limit_from_env"},
		{name: "no limit", ratio: 0.9, detect: detected(0, "", nil), level: "DEBUG", msg: "memory_limit_not_set"},
		{name: "detection failed", ratio: 0.9, detect: detected(0, "", errors.New("memlimit: f: bad")),
			level: "WARN", msg: "memory_limit_not_set", attrs: map[string]any{"error": "memlimit: f: bad"}},
		{name: "ratio 0 disables", ratio: 0},
		{name: "ratio above 1 ignored", ratio: 1.5},
		{name: "negative ratio ignored", ratio: -0.5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			getenv := func(k string) string {
				if k == "GOMEMLIMIT" {
					return tc.gomemlimit
				}
				return ""
			}
			detect := tc.detect
			if detect == nil {
				detect = func() (int64, string, error) { t.Error("detect called"); return 0, "", nil }
			}
			var set []int64
			Apply(log, tc.ratio, getenv, detect, func(n int64) int64 { set = append(set, n); return 0 })

			switch {
			case tc.set == 0 && len(set) > 0:
				t.Errorf("set(%v), want no call", set)
			case tc.set != 0 && (len(set) != 1 || set[0] != tc.set):
				t.Errorf("set(%v), want set(%d)", set, tc.set)
			}
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if tc.msg == "" {
				if buf.Len() > 0 {
					t.Errorf("logged %s, want nothing", buf.String())
				}
				return
			}
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
		})
	}
}

func FuzzParseLimit(f *testing.F) {
	for _, s := range []string{"max\n", "536870912\n", v1Unlimited, "0", "-1", "12a", " 42 \n", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseLimit(s)
		if err != nil {
			if n != 0 {
				t.Fatalf("%q: %d with error %v", s, n, err)
			}
			return
		}
		if n < 0 || n >= unlimited {
			t.Fatalf("%q: limit %d out of range", s, n)
		}
		// A limit is the trimmed content as a number, exactly.
		if n > 0 {
			if want, _ := strconv.ParseInt(strings.TrimSpace(s), 10, 64); want != n {
				t.Fatalf("%q: got %d, want %d", s, n, want)
			}
		}
	})
}
