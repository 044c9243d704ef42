package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/shop"
)

// prober init writes a starter that validate accepts, pointed at the URL
// given, and refuses to overwrite anything.
func TestInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "conf")
	code, stdout, stderr := invoke("init", "--dir", dir, "http://127.0.0.1:8080/health")
	if code != 0 || !strings.Contains(stdout, "wrote "+filepath.Join(dir, "probes.yaml")) {
		t.Fatalf("init: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = invoke("validate", "--config", filepath.Join(dir, "probes.yaml"))
	if code != 0 || !strings.Contains(stdout, "ok: 1 flow(s)") || !strings.Contains(stdout, "example") {
		t.Fatalf("validate of the starter: exit %d\n%s%s", code, stdout, stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "probes.yaml")); !strings.Contains(string(b), "http://127.0.0.1:8080/health") {
		t.Errorf("the URL is not in probes.yaml:\n%s", b)
	}

	// A second init changes nothing, even when only the flow exists.
	os.Remove(filepath.Join(dir, "probes.yaml"))
	os.WriteFile(filepath.Join(dir, "flows", "example.yaml"), []byte("mine"), 0o644)
	code, _, stderr = invoke("init", "--dir", dir)
	if code != 2 || !strings.Contains(stderr, "exists; not overwriting") {
		t.Errorf("init over a flow: exit %d %s", code, stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "flows", "example.yaml")); string(b) != "mine" {
		t.Error("init overwrote flows/example.yaml")
	}
	if _, err := os.Stat(filepath.Join(dir, "probes.yaml")); err == nil {
		t.Error("init wrote probes.yaml beside an existing flow")
	}
	if code, _, stderr := invoke("init", "--dir", t.TempDir(), "ftp://x"); code != 2 || !strings.Contains(stderr, "not an http(s) URL") {
		t.Errorf("init with a bad URL: exit %d %s", code, stderr)
	}
}

// The demo's banner shows how to run once against its shop, and never the
// password.
func TestDemoBannerShowsOnce(t *testing.T) {
	for _, own := range []bool{true, false} {
		var b bytes.Buffer
		sb := &shop.Sandbox{ShopURL: "http://127.0.0.1:4242", TLSAddr: "127.0.0.1:4243", ShopHTTPSURL: "https://127.0.0.1:4243",
			CertNotAfter: time.Now().Add(10*24*time.Hour + time.Hour)}
		printBanner(&b, &config.Config{}, "http://127.0.0.1:8315", sb, "/tmp/d", "/tmp/d/shop-ca.pem", own)
		out := b.String()
		if !strings.Contains(out, "SHOP_URL=http://127.0.0.1:4242 SHOP_TLS_ADDR=127.0.0.1:4243 SHOP_CA_FILE=/tmp/d/shop-ca.pem prober once") ||
			!strings.Contains(out, "http://127.0.0.1:8315/alerts") {
			t.Errorf("own password %v: banner lacks the once command or the alerts page:\n%s", own, out)
		}
		// The shop's HTTPS side, its CA, and when its certificate expires.
		if !strings.Contains(out, "https://127.0.0.1:4243   (CA: /tmp/d/shop-ca.pem; the certificate expires in 10 days") {
			t.Errorf("banner lacks the shop's HTTPS address, CA or expiry:\n%s", out)
		}
		if random := strings.Contains(out, "password is random"); random == own {
			t.Errorf("own password %v: banner says random: %v", own, random)
		}
	}
}

// The demo's run lines keep their verdicts in one column for the shipped
// flows' names, shop_certificate the longest.
func TestRunPrinterColumns(t *testing.T) {
	var b bytes.Buffer
	p := &runPrinter{w: &b}
	for _, f := range []string{"checkout", "shop_health", "shop_certificate"} {
		p.Observe(&result.Run{Flow: f, Status: result.Passed, Class: result.OK, Start: time.Now(), TraceID: strings.Repeat("a", 32)})
	}
	col := -1
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		i := strings.Index(line, "PASSED")
		if col >= 0 && i != col {
			t.Errorf("verdict at column %d, want %d:\n%s", i, col, b.String())
		}
		col = i
	}
}
