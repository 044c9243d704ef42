package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitLog waits until the process's stdout (JSON logs) holds a line with
// every one of parts, appearing after skip bytes.
func waitLog(t *testing.T, p *proc, within time.Duration, parts ...string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(read(t, p.stdout), "\n") {
			ok := line != ""
			for _, part := range parts {
				ok = ok && strings.Contains(line, part)
			}
			if ok {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no log line with %q within %s", parts, within)
}

func kill(t *testing.T, p *proc) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.done <- nil
}

// TestKillNineAtEveryPoint kills the prober with SIGKILL at each point of an
// incident (the alert pending, the trigger queued but unsent, the trigger
// being sent, the trigger sent, the resolve queued) and restarts it from the
// same state: PagerDuty gets exactly one incident, triggered and resolved.
func TestKillNineAtEveryPoint(t *testing.T) {
	e := newPagingEnv(t, `
  - name: checkout_failing
    flow_failing: {flows: [checkout]}
    for: 3s
    keep_firing_for: 3s
`)
	e.pd.SetLatency(1500 * time.Millisecond) // a window to die in while sending
	p, base := e.startProber(t)
	waitRun(t, base, "checkout", 30*time.Second, passed)
	e.fault(t, `{"gateway_status":504,"swallow_errors":true}`)

	// 1. The alert is pending: nothing queued yet.
	waitLog(t, p, 20*time.Second, `"msg":"alert_pending"`)
	kill(t, p)
	p, _ = e.startProber(t)
	// 2. The trigger is in the outbox, its delivery not yet finished.
	waitLog(t, p, 30*time.Second, `"msg":"page_queued"`, `"kind":"trigger"`)
	kill(t, p)
	if n := len(e.actions("trigger")); n > 1 {
		t.Fatalf("%d triggers before the restart", n)
	}
	p, _ = e.startProber(t)
	// 3. While PagerDuty is answering (the request is in flight).
	eventually(t, 30*time.Second, "a PagerDuty request in flight", func() bool { return e.pd.Requests() > 0 })
	time.Sleep(300 * time.Millisecond)
	kill(t, p)
	p, _ = e.startProber(t)
	// 4. After the trigger was delivered.
	eventually(t, 30*time.Second, "the trigger delivered", func() bool { return len(e.actions("trigger")) > 0 })
	waitLog(t, p, 30*time.Second, `"msg":"page_sent"`, `"notifier":"pagerduty"`)
	kill(t, p)
	p, _ = e.startProber(t)
	// 5. Healed: the resolve is queued, and the prober dies before sending it.
	e.fault(t, "")
	waitLog(t, p, 60*time.Second, `"msg":"page_queued"`, `"kind":"resolve"`, `"notifier":"pagerduty"`)
	kill(t, p)
	p, _ = e.startProber(t)

	eventually(t, 60*time.Second, "the resolve", func() bool { return len(e.actions("resolve")) > 0 })
	steady(t, 5*time.Second, "more than one incident", func() bool { return len(e.pd.Incidents()) == 1 })
	inc := e.pd.Incidents()[0]
	if inc.Status != "resolved" {
		t.Errorf("incident %+v", inc)
	}
	t.Logf("PagerDuty saw %d trigger(s) and %d resolve(s) for one incident (at-least-once; the dedup key folds repeats)",
		len(e.actions("trigger")), len(e.actions("resolve")))
	p.stop(t, 30*time.Second)
}

// TestSIGTERMFlushesTheOutbox: a page queued when SIGTERM arrives is
// delivered before the prober exits.
func TestSIGTERMFlushesTheOutbox(t *testing.T) {
	e := newPagingEnv(t, `
  - name: checkout_failing
    flow_failing: {flows: [checkout]}
    for: 2s
`)
	e.pd.SetLatency(2 * time.Second)
	p, base := e.startProber(t)
	waitRun(t, base, "checkout", 30*time.Second, passed)
	e.fault(t, `{"gateway_status":504,"swallow_errors":true}`)
	waitLog(t, p, 30*time.Second, `"msg":"page_queued"`, `"notifier":"pagerduty"`)
	p.stop(t, 30*time.Second)
	if n := len(e.actions("trigger")); n != 1 {
		t.Fatalf("%d triggers delivered by the time the prober exited, want 1", n)
	}
	if !strings.Contains(read(t, p.stdout), `"msg":"page_sent"`) {
		t.Error("no page_sent logged before exit")
	}
}
