package daemon

import (
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
)

// TestLogsPassTheRedactor: whatever logs through the daemon (its own events,
// notifiers, net/http's server through ErrorLog) is redacted with the
// secrets of the configuration in force, in their encodings.
func TestLogsPassTheRedactor(t *testing.T) {
	f := newFixture(t, fixtureOpts{files: map[string]string{
		"probes.yaml":       probes("health"),
		"flows/health.yaml": healthFlow("health"),
	}})
	f.d.Logger().Warn("echo", "error", "got "+strconv.Quote(password),
		"auth", "Basic "+base64.StdEncoding.EncodeToString([]byte("u:"+password)))
	f.d.Logger().With("notifier", "x").Error("x", "err", errString("dial "+password))
	f.d.srvErrorLog().Printf("http: bad request from %s", password)
	out := f.log.b.String()
	if strings.Contains(out, password) || strings.Contains(out, base64.StdEncoding.EncodeToString([]byte("u:" + password))[4:20]) {
		t.Fatalf("secret in the log:\n%s", out)
	}
	if strings.Count(out, "[secret:SHOP_PASSWORD]") < 4 || !strings.Contains(out, `"msg":"http_server"`) {
		t.Fatalf("log:\n%s", out)
	}
}

type errString string

func (e errString) Error() string { return string(e) }
