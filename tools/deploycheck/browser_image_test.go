package deploycheck

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestBrowserDockerfile: the Chromium variant runs the main image's
// binary and config, with Debian's chromium installed in the final stage,
// and starts as the main image does (same entrypoint, command, port and
// state volume).
func TestBrowserDockerfile(t *testing.T) {
	parse := func(name string) *Dockerfile {
		src, err := os.ReadFile(filepath.Join(repoRoot(t), name))
		if err != nil {
			t.Fatal(err)
		}
		df, err := ParseDockerfile(string(src))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return df
	}
	main, br := parse("Dockerfile").Final(), parse("Dockerfile.browser")
	final := br.Final()
	if !strings.HasPrefix(final.From, "debian:") {
		t.Errorf("final stage FROM %s: want Debian (its chromium package)", final.From)
	}
	installs := false
	for _, in := range final.Find("RUN") {
		installs = installs || strings.Contains(in.Args, "apt-get install") && strings.Contains(in.Args, " chromium ")
	}
	if !installs {
		t.Error("the final stage does not apt-get install chromium")
	}
	copied := map[string]bool{}
	for _, in := range final.Find("COPY") {
		if from, _ := in.Flag("from"); br.Stage(from) != nil && br.Stage(from).From == br.Args["PROBER_IMAGE"] {
			copied[strings.Fields(in.Args)[0]] = true
		}
	}
	if !copied["/prober"] || !copied["/etc/prober"] {
		t.Errorf("copied from the prober image: %v, want /prober and /etc/prober", copied)
	}
	for _, cmd := range []string{"ENTRYPOINT", "CMD", "VOLUME", "EXPOSE"} {
		a, b := main.Find(cmd), final.Find(cmd)
		if len(a) != 1 || len(b) != 1 || a[0].Args != b[0].Args || !slices.Equal(a[0].JSON, b[0].JSON) {
			t.Errorf("%s: browser image %v, main image %v", cmd, b, a)
		}
	}
}
