package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/prober-dev/prober/internal/promrules"
)

func TestRulesCommand(t *testing.T) {
	code, out, errOut := invoke("rules", "--config", repoProbes(t))
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var f promrules.File
	if err := yaml.Unmarshal([]byte(out), &f); err != nil {
		t.Fatalf("output is not YAML: %v\n%s", err, out)
	}
	if len(f.Groups) != 2 || f.Groups[0].Name != promrules.RecordingGroup || f.Groups[1].Name != promrules.AlertingGroup {
		t.Fatalf("groups %+v", f.Groups)
	}
	alerts := map[string]bool{}
	for _, r := range f.Groups[1].Rules {
		alerts[r.Alert] = true
	}
	for _, name := range []string{"checkout_failing", "gateway_success", "checkout_slo", "pay_latency"} {
		if !alerts[name] {
			t.Errorf("no alert %s in:\n%s", name, out)
		}
	}
	// The secrets probes.yaml declares are not needed, and never read.
	if strings.Contains(out, "SHOP_PASSWORD") {
		t.Errorf("output mentions a secret:\n%s", out)
	}

	// --out writes the same, and replaces an existing file.
	dest := filepath.Join(t.TempDir(), "prober.rules.yml")
	if err := os.WriteFile(dest, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := invoke("rules", "--config", repoProbes(t), "--out", dest); code != exitOK {
		t.Fatalf("--out: exit %d: %s", code, errOut)
	}
	if b, _ := os.ReadFile(dest); string(b) != out {
		t.Errorf("--out wrote something else:\n%s", b)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(dest), ".*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestRulesCommandBadConfig(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"probes.yaml": "flows: [f.yaml]\nrules:\n  - name: x\n    flow_failing: {flows: [nope]}\n",
		"f.yaml":      "name: f\nsteps:\n  - name: s\n    request: {url: \"http://127.0.0.1:1/\"}\n",
	})
	code, out, errOut := invoke("rules", "--config", filepath.Join(dir, "probes.yaml"))
	if code != exitUsage {
		t.Fatalf("exit %d, want %d; stdout %q", code, exitUsage, out)
	}
	if !strings.Contains(errOut, `probes.yaml:4:`) || !strings.Contains(errOut, `unknown flow "nope"`) {
		t.Errorf("stderr does not say where and what: %s", errOut)
	}
	if out != "" {
		t.Errorf("stdout on a bad config: %q", out)
	}
	if code, _, _ := invoke("rules", "--config", filepath.Join(dir, "missing.yaml")); code != exitUsage {
		t.Errorf("missing config: exit %d", code)
	}
	if code, _, _ := invoke("rules", "extra"); code != exitUsage {
		t.Errorf("unexpected argument: exit %d", code)
	}
}
