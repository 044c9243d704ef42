package deploycheck

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func unitPath(t *testing.T) string {
	return filepath.Join(repoRoot(t), "deploy", "systemd", "prober.service")
}

// unitDirectives reads a unit file into section.Key => values (in order).
func unitDirectives(t *testing.T, p string) map[string][]string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";"):
		case strings.HasPrefix(l, "["):
			section = strings.Trim(l, "[]")
		default:
			k, v, _ := strings.Cut(l, "=")
			out[section+"."+k] = append(out[section+"."+k], v)
		}
	}
	return out
}

// TestSystemdUnitDirectives: what the unit must say, beyond what verify
// checks (verify accepts a unit without any hardening).
func TestSystemdUnitDirectives(t *testing.T) {
	d := unitDirectives(t, unitPath(t))
	want := map[string]string{
		"Service.Type":                    "simple", // no sd_notify in the binary
		"Service.ExecReload":              "/bin/kill -HUP $MAINPID",
		"Service.Restart":                 "on-failure",
		"Service.DynamicUser":             "yes",
		"Service.StateDirectory":          "prober",
		"Service.ConfigurationDirectory":  "prober",
		"Service.EnvironmentFile":         "-/etc/prober/env",
		"Service.NoNewPrivileges":         "yes",
		"Service.ProtectSystem":           "strict",
		"Service.ProtectHome":             "yes",
		"Service.PrivateTmp":              "yes",
		"Service.PrivateDevices":          "yes",
		"Service.ProtectKernelTunables":   "yes",
		"Service.ProtectKernelModules":    "yes",
		"Service.ProtectKernelLogs":       "yes",
		"Service.ProtectControlGroups":    "yes",
		"Service.RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
		"Service.RestrictNamespaces":      "yes",
		"Service.LockPersonality":         "yes",
		"Service.MemoryDenyWriteExecute":  "yes",
		"Service.CapabilityBoundingSet":   "",
		"Install.WantedBy":                "multi-user.target",
	}
	for k, v := range want {
		if got := d[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want exactly %q", k, got, v)
		}
	}
	if sc := d["Service.SystemCallFilter"]; len(sc) == 0 || sc[0] != "@system-service" {
		t.Errorf("SystemCallFilter = %q, want @system-service first", sc)
	}
	exec := d["Service.ExecStart"]
	if len(exec) != 1 || !strings.HasPrefix(exec[0], "/usr/local/bin/prober run --config /etc/prober/probes.yaml --state-dir ${STATE_DIRECTORY}") {
		t.Errorf("ExecStart = %q", exec)
	}
	// The stop timeout must outlast the daemon's default --shutdown-grace.
	stop, err := time.ParseDuration(strings.TrimSpace(strings.Join(d["Service.TimeoutStopSec"], "")))
	if err != nil || stop <= 30*time.Second {
		t.Errorf("TimeoutStopSec = %q, want above the 30s shutdown grace", d["Service.TimeoutStopSec"])
	}
}

// TestSystemdVerify runs Debian's systemd-analyze verify on the unit and
// fails on any complaint about it. verify refuses a unit whose ExecStart
// binary does not exist, so it checks a temporary copy whose ExecStart
// names an executable stand-in (verify only checks that the path is an
// executable file; it runs nothing). The security exposure score is logged.
func TestSystemdVerify(t *testing.T) {
	analyze := systemdAnalyze(t)
	src, err := os.ReadFile(unitPath(t))
	if err != nil {
		t.Fatal(err)
	}
	unit, complaints := verifyUnit(t, analyze, string(src))
	for _, c := range complaints {
		t.Errorf("systemd-analyze verify: %s", c)
	}
	sec, err := exec.Command(analyze, "security", "--offline=yes", "--no-pager", unit).CombinedOutput()
	if m := regexp.MustCompile(`Overall exposure level for prober.service: ([0-9.]+ \S+)`).FindSubmatch(sec); m != nil {
		t.Logf("systemd-analyze security: exposure %s (0 best, 10 worst)", m[1])
	} else {
		t.Logf("systemd-analyze security --offline=yes: %v\n%s", err, sec)
	}
}

// TestSystemdVerifyCatches: the verify step reports what it should, so a
// clean run means something.
func TestSystemdVerifyCatches(t *testing.T) {
	analyze := systemdAnalyze(t)
	src, err := os.ReadFile(unitPath(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, from, to, want string }{
		{"misspelled key", "ProtectSystem=strict", "ProtectSytem=strict", "Unknown key 'ProtectSytem'"},
		{"bad value", "RestartSec=5s", "RestartSec=five", "Failed to parse sec value"},
		{"missing binary", "ExecStart=/usr/local/bin/prober ", "ExecStart=/nonexistent/prober ", "is not executable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(string(src), tc.from) {
				t.Fatalf("the unit has no %q", tc.from)
			}
			_, complaints := verifyUnit(t, analyze, strings.Replace(string(src), tc.from, tc.to, 1))
			if !strings.Contains(strings.Join(complaints, "\n"), tc.want) {
				t.Errorf("verify of a unit with %s: complaints %q, want one with %q", tc.name, complaints, tc.want)
			}
		})
	}
}

func systemdAnalyze(t *testing.T) string {
	t.Helper()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil && os.Getenv("PROBER_REQUIRE_SYSTEMD") != "" {
		t.Fatal("systemd-analyze is not installed and PROBER_REQUIRE_SYSTEMD is set (scripts/test.sh installs Debian's systemd)")
	}
	if err != nil {
		t.Skip("SKIP: systemd-analyze is not installed (apt-get install systemd); the unit's directives are checked by TestSystemdUnitDirectives")
	}
	return analyze
}

// verifyUnit writes content as prober.service in a temporary directory
// (ExecStart's /usr/local/bin/prober replaced by an executable stand-in),
// runs systemd-analyze verify on it and returns the unit's path and every
// complaint about it (lines about other units are logged, not returned).
func verifyUnit(t *testing.T, analyze, content string) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	stand := filepath.Join(dir, "bin", "prober")
	if err := os.MkdirAll(filepath.Dir(stand), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stand, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(dir, "prober.service")
	content = strings.ReplaceAll(content, "/usr/local/bin/prober ", stand+" ")
	if err := os.WriteFile(unit, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", "--man=no", unit).CombinedOutput()
	var complaints []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		switch {
		case l == "":
		case strings.Contains(l, "prober.service") || strings.Contains(l, dir):
			complaints = append(complaints, l)
		default:
			t.Logf("systemd-analyze verify (not about this unit): %s", l)
		}
	}
	if err != nil && len(complaints) == 0 {
		complaints = append(complaints, fmt.Sprintf("exit status: %v: %s", err, out))
	}
	return unit, complaints
}
