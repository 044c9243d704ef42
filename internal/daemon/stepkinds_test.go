package daemon

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/prober-dev/prober/internal/config"
)

// TestStepKindsRegistered: the daemon's kinds load, side by side with HTTP
// steps in one flow.
func TestStepKindsRegistered(t *testing.T) {
	fsys := fstest.MapFS{
		"probes.yaml": {Data: []byte("flows: [f.yaml]\n")},
		"f.yaml": {Data: []byte("name: f\nsteps:\n" +
			"  - name: cert\n    tls: {address: \"shop.test:443\"}\n    expect: cert.expires_in > 336h\n" +
			"  - name: redis\n    tcp: {address: \"127.0.0.1:6379\", send: \"PING\\r\\n\", reply: \"PONG\"}\n" +
			"  - name: page\n    request: {url: \"http://127.0.0.1:1/\"}\n" +
			"  - name: mx\n    dns: {name: shop.test, type: MX}\n    expect: answers.count > 0\n" +
			"  - name: ping\n    icmp: {host: shop.test}\n    expect: loss == 0\n")},
	}
	cfg, err := config.Load(fsys, "probes.yaml", config.Options{StepKinds: StepKinds()})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, s := range cfg.Flows[0].Steps {
		kinds = append(kinds, s.Kind)
	}
	if strings.Join(kinds, ",") != "tls,tcp,,dns,icmp" {
		t.Errorf("kinds %q", kinds)
	}
}
