package daemon

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"
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

// TestRunLinesRedactedOnce: a scheduled run's log lines are redacted by
// runlog with the set its runner was made with, the set the daemon's
// handler holds, so the handler passes them on (was: every line rebuilt
// and redacted again); still nothing of the secret in them.
func TestRunLinesRedactedOnce(t *testing.T) {
	f := newFixture(t, fixtureOpts{files: map[string]string{
		"probes.yaml":       probes("health"),
		"flows/health.yaml": healthFlow("health"),
	}})
	if len(f.d.jobs) != 1 {
		t.Fatalf("%d jobs", len(f.d.jobs))
	}
	f.d.jobs[0].Run(context.Background(), time.Now())
	m := f.d.runlog.Marked()
	if set := f.d.secrets.Load(); set.Len() == 0 || m != set {
		t.Fatalf("run lines marked redacted with %v, the handler holds %v", m, set)
	}
	out := f.log.b.String()
	if !strings.Contains(out, `"msg":"run"`) || strings.Contains(out, password) {
		t.Fatalf("log:\n%s", out)
	}
}
