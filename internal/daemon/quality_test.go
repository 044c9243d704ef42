package daemon

// The alert-quality suite (issue 12's proof): incident scenarios replayed
// through the daemon as it ships, on a virtual clock, each stating whether
// it must page (critical, PagerDuty), ticket (warning, not PagerDuty) or
// stay silent, and how fast pages come and go. The table it prints is the
// README's "## Alert quality" table; regenerate that with
//
//	go test ./internal/daemon -run TestAlertQuality -update
//
// Targets: every outage pages (100% recall), no false critical page,
// time to page <= interval + for + 5s (the paging rule's for), resolve
// <= keep_firing_for + one interval after the last paging member clears.

import (
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prober-dev/prober/internal/alert"
	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/result"
)

var qUpdate = flag.Bool("update", false, "rewrite README.md's alert-quality table from TestAlertQuality's results")

// knownMisses are the scenarios today's code fails, with the issue item
// that will fix each. The suite fails on any other miss, and on a known
// miss that passes (then delete its line). Empty: every scenario meets its
// targets.
var knownMisses = map[string]string{}

// Expected outcomes.
const (
	qPage    = "page"    // critical, to PagerDuty
	qTicket  = "ticket"  // warning, to Slack; never PagerDuty
	qNone    = "none"    // nothing at all
	qVisible = "visible" // a page PagerDuty refuses: the refusal shows
)

// qScenario is one incident (or non-incident) to replay. Times are since
// the scenario (and the prober) started.
type qScenario struct {
	name, item, story string
	regions           int           // 1 (the default) or 3
	history           time.Duration // healthy (but for faults) runs before the start; default 3 days
	faultAt, faultFor time.Duration // the trouble users see, for timing pages
	end               time.Duration // how long to replay
	fault             func(q qAttempt) *qResp
	restarts          []time.Duration // deploys: SIGTERM and start on the same state
	kills             []time.Duration // kill -9, and start on the same state
	dieAt             time.Duration   // the prober is killed and stays dead
	pagerduty         func(at time.Duration) error
	expect            string
	class             result.Class // the page must name it
	maxIncidents      int          // PagerDuty incidents the trouble may open (default 1)
	// pagers are the rules whose for, windows and keep_firing_for bound
	// time to page (the first present) and time to resolve (all).
	pagers []string
	// sigterm: the notifier-outage scenario ends in a SIGTERM (no restart).
	sigterm bool
	// pageByFn, when set, replaces the time-to-page budget (once replayed).
	pageByFn func() time.Duration
	// holdFor, when set, is a documented hold added to the resolve budget
	// (flap damping keeps a flapping alert firing that long).
	holdFor time.Duration
	// jitter: delivery is retried with random backoff, so a late page's
	// time is not the same from run to run: the table says only "late".
	jitter bool
	// probes look at the running prober at their times.
	probes []qProbe
	// premise checks that the replay did what the story says.
	premise func(e *qEnv) string
}

type qProbe struct {
	at time.Duration
	fn func(e *qEnv, o *qOutcome)
}

// failFor is the behaviour of the stand-in for notifier n.
func (sc *qScenario) failFor(n *config.Notifier, t0 time.Time) func(time.Time) error {
	if n.Type != "pagerduty" || sc.pagerduty == nil {
		return nil
	}
	return func(now time.Time) error { return sc.pagerduty(now.Sub(t0)) }
}

// qOutcome is what a scenario observed.
type qOutcome struct {
	sc       *qScenario
	observed string // "page critical", "ticket warning", "none", ...
	// ttp is the time from the fault to the page (or ticket); ttr from the
	// fault's end to the page's resolve; their budgets.
	ttp, ttr        time.Duration
	ttpMax, ttrMax  time.Duration
	paged, ticketed bool
	resolved        bool
	openAfter       time.Duration // not resolved: still open this long after the fault
	falsePages      int           // PagerDuty incidents the scenario does not warrant
	mu              sync.Mutex    // guards problems and notes (probes run beside the replay)
	problems, notes []string
}

func (o *qOutcome) problem(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.problems = append(o.problems, fmt.Sprintf(format, args...))
}

// Faults the scenarios use.
var (
	qSwallowed   = &qResp{status: 200, body: `{"status":"processing"}`, dur: 1200 * time.Millisecond}
	qBadGateway  = &qResp{status: 502, body: `{"error":"bank gateway unavailable"}`, dur: 1200 * time.Millisecond}
	qTooMany     = &qResp{status: 429, body: `{"error":"rate limited by the bank gateway"}`, dur: 300 * time.Millisecond}
	qUnavailable = &qResp{status: 503, body: `{"error":"service unavailable"}`, dur: 50 * time.Millisecond}
	qRefused     = &qResp{class: result.ConnectRefused, msg: "connection refused (dial tcp 203.0.113.7:443)"}
	qNoSuchHost  = &qResp{class: result.DNS, msg: "dns: no such host shop.example"}
	qBadCert     = &qResp{class: result.TLS, msg: "tls: x509: certificate has expired or is not yet valid"}
	qSlowPay     = &qResp{status: 200, body: `{"status":"success"}`, dur: 2400 * time.Millisecond}
)

// qWindow is fault resp for step of the checkout in [from, from+length),
// in regions (all when none).
func qWindow(step string, resp *qResp, from, length time.Duration, regions ...string) func(qAttempt) *qResp {
	return func(q qAttempt) *qResp {
		if q.flow != "checkout" || q.step != step || q.at < from || q.at >= from+length {
			return nil
		}
		if len(regions) > 0 && !slices.Contains(regions, q.region) {
			return nil
		}
		return resp
	}
}

var qRegions3 = []string{"eu-west-1", "us-east-1", "ap-south-1"}

func qScenarios() []*qScenario {
	const warm = time.Hour
	payRules := []string{"checkout_failing", "gateway_success"}
	flowRules := []string{"checkout_failing"}
	outage := func(name, item, story string, step string, resp *qResp, class result.Class, pagers []string) *qScenario {
		return &qScenario{name: name, item: item, story: story, faultAt: warm, faultFor: 30 * time.Minute,
			end: warm + 30*time.Minute + 30*time.Minute, fault: qWindow(step, resp, warm, 30*time.Minute),
			expect: qPage, class: class, pagers: pagers}
	}
	return []*qScenario{
		outage("shop_down", "", "the shop refuses connections for 30m", "login", qRefused, result.ConnectRefused, flowRules),
		outage("gateway_5xx", "", "pay answers 502 for 30m (hard 5xx)", "pay", qBadGateway, result.HTTP5xx, payRules),
		outage("swallowed_error", "", `pay answers 200 {"status":"processing"} for 30m`, "pay", qSwallowed, result.SwallowedError, payRules),
		outage("dns_failure", "", "shop.example does not resolve for 30m", "login", qNoSuchHost, result.DNS, flowRules),
		outage("tls_failure", "", "the shop's certificate expired, 30m", "login", qBadCert, result.TLS, flowRules),
		{name: "gateway_429_short", story: "pay answers 429 for 80s (shorter than for)", faultAt: warm, faultFor: 80 * time.Second,
			end: warm + time.Hour, fault: qWindow("pay", qTooMany, warm, 80*time.Second), expect: qNone},
		{name: "gateway_429_long", story: "pay answers 429 for 15m", faultAt: warm, faultFor: 15 * time.Minute,
			end: warm + 45*time.Minute, fault: qWindow("pay", qTooMany, warm, 15*time.Minute), expect: qPage,
			class: result.HTTP429, pagers: payRules},
		{name: "gateway_outage_47m", item: "3", story: "pay answers 502 for 47m; resolve time",
			faultAt: 2 * time.Hour, faultFor: 47 * time.Minute, end: 2*time.Hour + 47*time.Minute + 7*time.Hour,
			fault: qWindow("pay", qBadGateway, 2*time.Hour, 47*time.Minute), expect: qPage, class: result.HTTP5xx, pagers: payRules},
		{name: "three_of_three", story: "pay swallowed in 3 of 3 regions for 30m", regions: 3,
			faultAt: warm, faultFor: 30 * time.Minute, end: warm + time.Hour,
			fault: qWindow("pay", qSwallowed, warm, 30*time.Minute), expect: qPage, class: result.SwallowedError, pagers: payRules},
		// A third of the runs failing burns the checkout's SLO at ~33x:
		// past about 25m the burn rate pages, by design (checkout_slo).
		// Shorter, one region is a ticket.
		{name: "one_of_three", item: "4", story: "the shop refuses connections in 1 of 3 regions for 20m: a ticket, not a page (past ~25m the SLO burn pages)", regions: 3,
			faultAt: warm, faultFor: 20 * time.Minute, end: warm + time.Hour,
			fault: qWindow("login", qRefused, warm, 20*time.Minute, "ap-south-1"), expect: qTicket},
		{name: "one_region_gateway", item: "4", story: "pay answers 502 in 1 of 3 regions for 20m: a ticket, not a page (past ~25m the SLO burn pages)", regions: 3,
			faultAt: warm, faultFor: 20 * time.Minute, end: warm + time.Hour,
			fault: qWindow("pay", qBadGateway, warm, 20*time.Minute, "ap-south-1"), expect: qTicket},
		{name: "blips_2pct", story: "2% of requests fail at random, 3 regions, 6h (1,080 slots)", regions: 3,
			end: 6 * time.Hour, fault: qBlips(0.02), expect: qNone, premise: qBlipPremise},
		qYoungWindows(),
		qWarningLed(),
		{name: "recovery_not_held", item: "3", story: "a 20m swallowed outage; the page resolves when checkout recovers",
			faultAt: 2 * time.Hour, faultFor: 20 * time.Minute, end: 2*time.Hour + 20*time.Minute + time.Hour,
			fault: qWindow("pay", qSwallowed, 2*time.Hour, 20*time.Minute), expect: qPage, class: result.SwallowedError, pagers: payRules},
		qFlapping(),
		{name: "slow_gateway", item: "6", story: "pay takes 2.4s for 30m: slow is a ticket, not an outage",
			faultAt: warm, faultFor: 30 * time.Minute, end: warm + time.Hour,
			fault: qWindow("pay", qSlowPay, warm, 30*time.Minute), expect: qTicket},
		qDeliveryFailure(),
		qNotifierOutage("notifier_outage", "9", 10*time.Minute, false),
		qNotifierOutage("drain_on_sigterm", "9", 8*time.Minute, true),
		qRestartMidOutage(),
		qPageText(),
		qRetriesNotRuns(),
		qHeartbeat(),
	}
}

// qBlips fails each attempt of each step with probability p, at random
// (deterministically: a hash of region, slot, attempt and step).
func qBlips(p float64) func(qAttempt) *qResp {
	return func(q qAttempt) *qResp {
		if q.flow != "checkout" || q.step == "cancel_order" {
			return nil
		}
		if qHash("blip", q.region, q.slot, q.attempt, q.step) < p/4 { // 4 steps: p per run
			return qUnavailable
		}
		return nil
	}
}

func qBlipPremise(e *qEnv) string {
	// The store keeps 100 runs in full: count from its history.
	good, runs := e.d.store.FlowCounts("checkout", e.sc.end, time.Now())
	confirmed := runs - good
	if runs < 1000 {
		return fmt.Sprintf("only %d final runs", runs)
	}
	e.notes(fmt.Sprintf("%d final runs, %d confirmed failures", runs, confirmed))
	return ""
}

func (e *qEnv) notes(s string) {
	e.outcome.mu.Lock()
	defer e.outcome.mu.Unlock()
	e.outcome.notes = append(e.outcome.notes, s)
}

// qYoungWindows: a deploy, then one confirmed failure 11 runs later.
func qYoungWindows() *qScenario {
	restart := 2 * time.Hour
	blip := restart + 11*time.Minute
	return &qScenario{name: "young_windows_restart", item: "1",
		story: "a deploy, then one confirmed failure 11 runs later: nothing", restarts: []time.Duration{restart},
		end: restart + 2*time.Hour, expect: qNone,
		fault: func(q qAttempt) *qResp { // the slot, and so its retry
			if q.flow == "checkout" && q.step == "login" && q.slot >= blip && q.slot < blip+time.Minute {
				return qUnavailable
			}
			return nil
		},
		premise: func(e *qEnv) string {
			good, total := e.d.store.FlowCounts("checkout", 3*time.Hour, time.Now())
			if total-good != 1 {
				return fmt.Sprintf("%d confirmed failures since the deploy, want 1", total-good)
			}
			return ""
		}}
}

// qWarningLed: a slow burn opens a warning incident, then an outage.
func qWarningLed() *qScenario {
	burn := func(q qAttempt) *qResp {
		// One confirmed failure every 25 minutes (4%) for the day before
		// and until the outage: a ticket burn (3x over 1d and 2h).
		const every = 25 * time.Minute
		// Offset by 5m so that no failing slot falls at the scenario's
		// start, where the replayed history meets the live schedule.
		if q.flow == "checkout" && q.step == "login" && q.slot < 110*time.Minute && q.slot >= -24*time.Hour && ((q.slot+5*time.Minute)%every+every)%every < time.Minute {
			return qUnavailable
		}
		return nil
	}
	out := qWindow("pay", qSwallowed, 110*time.Minute, 30*time.Minute)
	return &qScenario{name: "warning_then_critical", item: "2",
		story:   "a 4% slow burn opens a warning incident, then pay is swallowed for 30m: PagerDuty is paged at once",
		faultAt: 110 * time.Minute, faultFor: 30 * time.Minute, end: 110*time.Minute + time.Hour,
		fault: func(q qAttempt) *qResp {
			if r := out(q); r != nil {
				return r
			}
			return burn(q)
		}, expect: qPage, class: result.SwallowedError, pagers: []string{"checkout_failing", "gateway_success"},
		probes: []qProbe{{at: 110 * time.Minute, fn: func(e *qEnv, o *qOutcome) {
			for _, d := range e.rec.deliveries() {
				if d.err == nil && d.page.Kind == alert.Trigger && d.page.Severity == "warning" {
					return
				}
			}
			o.problem("premise: no warning before the outage")
		}}}}
}

// qFlapping: three minutes failing, four passing, for an hour.
func qFlapping() *qScenario {
	from, length := time.Hour, time.Hour
	return &qScenario{name: "flapping", item: "5",
		story:   "checkout fails 3m, passes 4m, for an hour: flap damping holds it (at most 3 incidents; resolved 15m after the last failure)",
		faultAt: from, faultFor: length, end: from + length + time.Hour, maxIncidents: 3, holdFor: 15 * time.Minute,
		fault: func(q qAttempt) *qResp {
			if q.flow == "checkout" && q.step == "login" && q.at >= from && q.at < from+length && (q.at-from)%(7*time.Minute) < 3*time.Minute {
				return qUnavailable
			}
			return nil
		}, expect: qPage, class: result.HTTP5xx, pagers: []string{"checkout_failing"}}
}

// qDeliveryFailure: PagerDuty refuses the routing key.
func qDeliveryFailure() *qScenario {
	from := time.Hour
	return &qScenario{name: "delivery_failure", item: "8",
		story:   "PagerDuty answers 400 (bad routing key) to a 30m outage's page: /api/v1/alerts shows the failure, not notified",
		faultAt: from, faultFor: 30 * time.Minute, end: from + time.Hour,
		fault:  qWindow("pay", qSwallowed, from, 30*time.Minute),
		expect: qVisible, pagers: []string{"checkout_failing", "gateway_success"},
		pagerduty: func(time.Duration) error {
			return errQ(true, 400, "Invalid routing key")
		},
		probes: []qProbe{{at: from + 20*time.Minute, fn: func(e *qEnv, o *qOutcome) {
			code, body := e.get("/api/v1/alerts")
			if code != 200 {
				o.problem("/api/v1/alerts: HTTP %d", code)
				return
			}
			var answer struct {
				Alerts []struct {
					Rule     string   `json:"rule"`
					Notified []string `json:"notified"`
				} `json:"alerts"`
			}
			if err := json.Unmarshal([]byte(body), &answer); err != nil {
				o.problem("/api/v1/alerts: %v", err)
			}
			for _, a := range answer.Alerts {
				if slices.Contains(a.Notified, "pagerduty") {
					o.problem("/api/v1/alerts says %s notified pagerduty, which refused it", a.Rule)
					break
				}
			}
			if !strings.Contains(body, "Invalid routing key") {
				o.problem("/api/v1/alerts does not show PagerDuty's error")
			}
			e.d.alerts.mu.Lock()
			disp := e.d.alerts.disp
			e.d.alerts.mu.Unlock()
			stats := disp.Stats()
			if stats["pagerduty"].Dead == 0 {
				o.problem("the dispatcher counts no dead letter for pagerduty")
			}
			if _, page := e.get("/"); !strings.Contains(page, "Invalid routing key") {
				o.problem("the status page does not show PagerDuty's error")
			}
			// The heartbeat must stop while pages cannot be delivered.
			if hb := e.d.Config().Alerting.Heartbeat; hb == nil || hb.URL == "" {
				o.problem("no heartbeat to withhold")
			} else if p := e.rec.pingTimes(); len(p) > 0 && time.Since(p[len(p)-1]) < 2*hb.Interval {
				o.problem("the heartbeat pinged %s ago, with a page in the dead letters", qDur(time.Since(p[len(p)-1])))
			}
		}}}}
}

// qNotifierOutage: PagerDuty answers 503 from 10m before an outage until
// the first attempt at least back into it, and is back one second after that
// attempt (the worst moment for a backoff): the page must follow within 10s.
// With sigterm the prober gets SIGTERM one second after PagerDuty's return:
// its drain must make a last attempt.
func qNotifierOutage(name, item string, backAfter time.Duration, sigterm bool) *qScenario {
	from := time.Hour
	var mu sync.Mutex
	var back time.Duration // when PagerDuty answers again; 0 while unknown
	story := fmt.Sprintf("PagerDuty answers 503 from 10m before a 30m outage until %s into it; the page follows within 10s of its return", qDur(backAfter))
	if sigterm {
		story = fmt.Sprintf("PagerDuty answers 503 until %s into an outage; SIGTERM 1s after its return: the drain delivers the page", qDur(backAfter))
	}
	sc := &qScenario{name: name, item: item, story: story,
		faultAt: from, faultFor: 30 * time.Minute, end: from + time.Hour,
		fault:  qWindow("pay", qSwallowed, from, 30*time.Minute),
		expect: qPage, class: result.SwallowedError, pagers: []string{"checkout_failing", "gateway_success"}, jitter: true,
		sigterm: sigterm,
		pagerduty: func(at time.Duration) error {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case at < from-10*time.Minute:
				return nil
			case back == 0 && at >= from+backAfter:
				back = at + time.Second
			case back != 0 && at >= back:
				return nil
			}
			return errQ(false, 503, "service unavailable")
		}}
	returned := func() time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return back
	}
	sc.pageByFn = func() time.Duration {
		if b := returned(); b != 0 {
			return b - from + 10*time.Second
		}
		return 0
	}
	if sigterm {
		sc.probes = []qProbe{{at: from + backAfter, fn: func(e *qEnv, o *qOutcome) {
			for returned() == 0 {
				time.Sleep(time.Second)
			}
			time.Sleep(time.Until(e.t0.Add(returned() + time.Second)))
			e.stop(true)
		}}}
	}
	return sc
}

// qRestartMidOutage: a deploy and a crash during an outage: one incident,
// neither lost nor doubled, and it resolves.
func qRestartMidOutage() *qScenario {
	from := time.Hour
	return &qScenario{name: "restart_mid_outage",
		story:   "pay swallowed for 30m; a deploy 10m in and a kill -9 20m in: one incident, resolved",
		faultAt: from, faultFor: 30 * time.Minute, end: from + time.Hour,
		restarts: []time.Duration{from + 10*time.Minute}, kills: []time.Duration{from + 20*time.Minute},
		fault:  qWindow("pay", qSwallowed, from, 30*time.Minute),
		expect: qPage, class: result.SwallowedError, pagers: []string{"checkout_failing", "gateway_success"}}
}

// qPageText: what the page says.
func qPageText() *qScenario {
	from := time.Hour
	return &qScenario{name: "page_text", item: "10",
		story:   `the shop refuses connections for 30m: "was" reads 100% (the days before), one duration in resolves, no empty region lists`,
		faultAt: from, faultFor: 30 * time.Minute, end: from + time.Hour + 30*time.Minute,
		fault:  qWindow("login", qRefused, from, 30*time.Minute),
		expect: qPage, class: result.ConnectRefused, pagers: []string{"checkout_failing"},
		probes: []qProbe{{at: from + time.Hour + 30*time.Minute - time.Second, fn: func(e *qEnv, o *qOutcome) {
			was := regexp.MustCompile(`\(was ([^)]*)\)`)
			dur := regexp.MustCompile(`\b(?:after|for) \d[0-9hms.]*`)
			seen := map[string]bool{}
			for _, d := range e.rec.deliveries() {
				if d.err != nil {
					continue
				}
				s := d.page.Summary
				for _, m := range was.FindAllStringSubmatch(s, -1) {
					if m[1] != "100%" && !seen["was"+m[1]] {
						seen["was"+m[1]] = true
						o.problem("%s says (was %s): the days before were 100%%", d.page.Rule, m[1])
					}
				}
				if strings.Contains(s, "no data before") && !seen["nodata"] {
					seen["nodata"] = true
					o.problem("%s says no data before, with 2h of history", d.page.Rule)
				}
				if d.page.Kind == alert.Resolve {
					if n := len(dur.FindAllString(s, -1)); n > 1 && !seen["dur"] {
						seen["dur"] = true
						o.problem("resolve text has %d durations: %q", n, s)
					}
				}
				if (strings.Contains(s, "()") || strings.Contains(s, ": 0 of")) && !seen["regions"+d.page.Rule] {
					seen["regions"+d.page.Rule] = true
					o.problem("%s has an empty region list: %q", d.page.Rule, s)
				}
			}
		}}}}
}

// qRetriesNotRuns: the status page's ratio is over final runs.
func qRetriesNotRuns() *qScenario {
	from := time.Hour
	return &qScenario{name: "retries_not_runs", item: "11",
		story:   "during a 10m outage the status page counts final runs, as the rules do",
		faultAt: from, faultFor: 10 * time.Minute, end: from + 40*time.Minute,
		fault:  qWindow("pay", qSwallowed, from, 10*time.Minute),
		expect: qPage, class: result.SwallowedError, pagers: []string{"checkout_failing", "gateway_success"},
		probes: []qProbe{{at: from + 10*time.Minute, fn: func(e *qEnv, o *qOutcome) {
			runs := e.d.store.Recent("checkout", 0)
			finals, passed := 0, 0
			for _, r := range runs {
				if r.Final() {
					finals++
					if r.OK() {
						passed++
					}
				}
			}
			want := fmt.Sprintf("%.1f%%", 100*float64(passed)/float64(finals))
			_, body := e.get("/")
			m := regexp.MustCompile(`([0-9.]+%) of (?:the )?last (\d+) [a-z ]*?runs?\b`).FindStringSubmatch(body)
			if m == nil {
				o.problem("the status page shows no success ratio")
				return
			}
			if m[1] != want {
				o.problem("the status page says %s of last %s runs; final runs: %s of %d", m[1], m[2], want, finals)
			}
		}}}}
}

// qHeartbeat: the only prober dies; a dead man's switch (pinged by the
// heartbeat, paging after a missed ping and a grace of one interval) pages.
func qHeartbeat() *qScenario {
	die := time.Hour
	return &qScenario{name: "heartbeat", item: "12",
		story: "the only prober is killed: the dead man's switch pages", dieAt: die,
		faultAt: die, faultFor: 0, end: die + time.Hour, expect: qPage}
}

// replay runs sc on the virtual clock and measures it.
func qReplay(t *testing.T, sc *qScenario, o *qOutcome) {
	e := &qEnv{tb: t, sc: sc, stateDir: qStateDir(t), env: qEnvFor(sc.name), rec: &qRecorder{}, outcome: o}
	qHeartbeats.register("/"+sc.name, e.rec)
	e.regions = qRegions3[:max(sc.regions, 1)]
	synctest.Test(t, func(t *testing.T) {
		e.tb = t
		e.t0 = time.Now()
		e.start()
		e.prefill(cmp.Or(sc.history, 72*time.Hour))
		type event struct {
			at time.Duration
			fn func()
		}
		var evs []event
		for _, r := range sc.restarts {
			evs = append(evs, event{r, e.restart})
		}
		for _, k := range sc.kills {
			evs = append(evs, event{k, func() { e.stop(false); e.start() }})
		}
		if sc.dieAt > 0 {
			evs = append(evs, event{sc.dieAt, func() { e.stop(false) }})
		}
		for _, p := range sc.probes {
			evs = append(evs, event{p.at, func() {
				if e.d != nil {
					p.fn(e, o)
				}
			}})
		}
		slices.SortStableFunc(evs, func(a, b event) int { return cmp.Compare(a.at, b.at) })
		for _, ev := range evs {
			time.Sleep(time.Until(e.t0.Add(ev.at)))
			ev.fn()
		}
		time.Sleep(time.Until(e.t0.Add(sc.end)))
		if sc.premise != nil && e.d != nil {
			if p := sc.premise(e); p != "" {
				t.Errorf("%s: premise: %s", sc.name, p)
			}
		}
		e.checkHealthyRuns()
		e.stop(false)
		e.measure(o)
		if testing.Verbose() {
			for _, d := range e.rec.deliveries() {
				errText := ""
				if d.err != nil {
					errText = " ERROR " + d.err.Error()
				}
				t.Logf("%s +%s %s %s %s %s%s: %s", sc.name, qDur(d.at.Sub(e.t0)), d.notifier, d.page.Kind, d.page.Severity, d.page.Rule, errText, d.page.Summary)
			}
		}
	})
}

// checkHealthyRuns fails the test when a run failed outside every fault:
// the stand-in shop no longer satisfies the shipped flows.
func (e *qEnv) checkHealthyRuns() {
	if e.d == nil || e.sc.fault != nil {
		return
	}
	for _, f := range e.d.Config().Flows {
		for _, r := range e.d.store.Recent(f.Name, 0) {
			if !r.OK() {
				e.tb.Fatalf("%s: a healthy run of %s failed: %s (update qHealthy for the shipped flows)", e.sc.name, f.Name, r.Summary())
			}
		}
	}
}

// measure turns the recorded deliveries into the outcome.
func (e *qEnv) measure(o *qOutcome) {
	sc := e.sc
	faultStart, faultEnd, end := e.t0.Add(sc.faultAt), e.t0.Add(sc.faultAt+sc.faultFor), e.t0.Add(sc.end)
	open := map[string]bool{}
	var opens []qDelivery
	var lastClose time.Time
	var ticket *qDelivery
	var pagedBy []string // rules that told PagerDuty something: each holds the incident
	for _, d := range e.rec.deliveries() {
		if d.err != nil || d.at.After(end) {
			continue
		}
		if d.typ == "pagerduty" && d.page.Kind != alert.Resolve && !slices.Contains(pagedBy, d.page.Rule) {
			pagedBy = append(pagedBy, d.page.Rule)
		}
		if d.typ != "pagerduty" {
			if ticket == nil && d.page.Kind == alert.Trigger {
				ticket = &d
			}
			continue
		}
		switch d.page.Kind {
		case alert.Trigger:
			if !open[d.page.DedupKey] {
				open[d.page.DedupKey] = true
				opens = append(opens, d)
			}
		case alert.Resolve:
			if open[d.page.DedupKey] {
				delete(open, d.page.DedupKey)
				lastClose = d.at
			}
		}
	}
	switch {
	case len(opens) > 0:
		o.observed = qPage + " " + opens[0].page.Severity
	case ticket != nil && ticket.page.Severity == "critical":
		o.observed = "critical, not to PagerDuty"
	case ticket != nil:
		o.observed = qTicket + " " + ticket.page.Severity
	default:
		o.observed = qNone
	}
	if sc.expect == qVisible {
		o.observed = "not paged"
		if len(o.problems) == 0 {
			o.observed = "refusal shown"
		}
	}
	var during []qDelivery
	for _, d := range opens {
		if d.at.Before(faultStart) {
			o.falsePages++
			continue
		}
		during = append(during, d)
	}
	cfg := e.loadConfig()
	interval := cfg.checkoutEvery
	o.ttpMax, o.ttrMax = cfg.budgets(sc, interval, pagedBy)
	// The for clock starts when the run that sees the failure, and its
	// confirming retry, have ended: their time counts beside the budget.
	e.failMu.Lock()
	if sc.pageByFn == nil && !e.firstFailTo.IsZero() {
		o.ttpMax += e.firstFailTo.Sub(e.firstFailFrom).Round(time.Second)
	}
	e.failMu.Unlock()
	if sc.name == "heartbeat" {
		e.measureHeartbeat(o, cfg)
		return
	}
	switch sc.expect {
	case qPage:
		o.falsePages += max(0, len(during)-max(sc.maxIncidents, 1))
		if len(during) == 0 {
			o.problem("no page")
			break
		}
		o.paged, o.ttp = true, during[0].at.Sub(faultStart)
		if sev := during[0].page.Severity; sev != "critical" {
			o.problem("paged at severity %s", sev)
		}
		switch {
		case o.ttp <= o.ttpMax:
		case sc.jitter: // random backoff: no times in the text
			o.problem("paged more than 10s after PagerDuty's return")
		default:
			o.problem("paged after %s, more than %s", qDur(o.ttp), qDur(o.ttpMax))
		}
		if sc.class != "" && !strings.Contains(during[0].page.Summary, string(sc.class)) {
			o.problem("the page does not name class %s: %q", sc.class, during[0].page.Summary)
		}
		if sc.dieAt > 0 || sc.sigterm {
			break // nobody is left to resolve
		}
		if len(open) == 0 && !lastClose.Before(faultEnd) {
			o.resolved, o.ttr = true, lastClose.Sub(faultEnd)
			if o.ttr > o.ttrMax {
				o.problem("resolved %s after the fault, more than %s", qDur(o.ttr), qDur(o.ttrMax))
			}
		} else {
			o.openAfter = end.Sub(faultEnd)
			o.problem("still open %s after the fault ended", qDur(o.openAfter))
		}
	case qTicket:
		o.falsePages += len(during)
		if len(opens) > 0 {
			o.problem("paged %s (want a ticket)", opens[0].page.Severity)
		}
		if ticket == nil {
			o.problem("no ticket")
		} else {
			o.ticketed, o.ttp = true, ticket.at.Sub(faultStart)
		}
	case qNone:
		o.falsePages += len(during)
		if len(opens) > 0 {
			o.problem("paged %s: %q", opens[0].page.Severity, opens[0].page.Summary)
		} else if ticket != nil {
			o.problem("ticket %s: %q", ticket.page.Severity, ticket.page.Summary)
		}
	case qVisible:
		o.falsePages += 0
	}
	if o.falsePages > 0 && sc.expect == qPage {
		o.problem("%d false critical pages", o.falsePages)
	}
}

// measureHeartbeat models the dead man's switch (healthchecks.io style:
// a period of the heartbeat's interval, a grace of one more).
func (e *qEnv) measureHeartbeat(o *qOutcome, cfg qConfig) {
	pings := e.rec.pingTimes()
	if cfg.heartbeat <= 0 {
		o.observed = qNone
		o.problem("the shipped configuration has no heartbeat")
		return
	}
	o.ttpMax = 2*cfg.heartbeat + 5*time.Second
	if len(pings) == 0 {
		o.observed = qNone
		o.problem("no heartbeat ping was sent")
		return
	}
	death := e.t0.Add(e.sc.dieAt)
	last := pings[len(pings)-1]
	pageAt := last.Add(2 * cfg.heartbeat)
	if pageAt.After(e.t0.Add(e.sc.end)) {
		o.observed = qNone
		o.problem("pings went on after the prober died")
		return
	}
	o.observed, o.paged, o.ttp = qPage+" critical", true, pageAt.Sub(death)
	if o.ttp > o.ttpMax {
		o.problem("paged after %s, more than %s", qDur(o.ttp), qDur(o.ttpMax))
	}
}

// qConfig is what budgets read from the shipped configuration.
type qConfig struct {
	cfg           *config.Config
	checkoutEvery time.Duration
	heartbeat     time.Duration // 0 without one
}

func (e *qEnv) loadConfig() qConfig {
	cfg, err := config.Load(e.configFS(), "probes.yaml", config.Options{Notifiers: NotifierKinds(), StepKinds: StepKinds(), Env: func(k string) (string, bool) { v, ok := e.env[k]; return v, ok }})
	if err != nil {
		e.tb.Fatalf("loading the shipped configuration: %v", err)
	}
	q := qConfig{cfg: cfg, checkoutEvery: time.Minute}
	for _, f := range cfg.Flows {
		if f.Name == "checkout" && f.Schedule.Every > 0 {
			q.checkoutEvery = f.Schedule.Every
		}
	}
	if hb := cfg.Alerting.Heartbeat; hb != nil && hb.URL != "" {
		q.heartbeat = hb.Interval
	}
	return q
}

// budgets: time to page <= interval + for + 5s of the scenario's first
// paging rule present; time to resolve <= the time its paging rules (those
// expected, and any other that told PagerDuty: it holds the incident too)
// take to clear after the fault (the next run; a window; a burn rate's
// shortest paging short window) + keep_firing_for + one interval, the
// longest of them.
func (q qConfig) budgets(sc *qScenario, interval time.Duration, pagedBy []string) (page, resolve time.Duration) {
	rules := map[string]*config.Rule{}
	for _, r := range q.cfg.Alerting.Rules {
		rules[r.Name] = r
	}
	holders := slices.Clone(sc.pagers)
	for _, name := range pagedBy {
		if !slices.Contains(holders, name) {
			holders = append(holders, name)
		}
	}
	for i, name := range holders {
		if i >= len(sc.pagers) { // not expected to page: no say in the time to page
			r := rules[name]
			if r == nil {
				continue
			}
			resolve = max(resolve, q.clearTime(r, interval)+r.KeepFiringFor+interval)
			continue
		}
		if r := rules[name]; r != nil && page == 0 {
			page = interval + r.For + 5*time.Second
		}
		r := rules[name]
		if r == nil {
			continue
		}
		resolve = max(resolve, q.clearTime(r, interval)+r.KeepFiringFor+interval)
	}
	if sc.pageByFn != nil {
		page = sc.pageByFn()
	}
	resolve += sc.holdFor
	return page, resolve
}

// clearTime is how long rule r's condition takes to clear once the fault
// is gone: the next run; a window; a burn rate's paging pair clears with
// its short window (the longest short window among the critical pairs).
func (q qConfig) clearTime(r *config.Rule, interval time.Duration) time.Duration {
	switch {
	case r.DependencySuccess != nil:
		return r.DependencySuccess.Window
	case r.Latency != nil:
		return r.Latency.Window
	case r.BurnRate != nil:
		ws := r.BurnRate.Windows
		if len(ws) == 0 {
			ws = config.DefaultBurnWindows
		}
		var d time.Duration
		for _, w := range ws {
			if w.Severity == "" || w.Severity == "critical" {
				d = max(d, w.Short)
			}
		}
		return d
	}
	return interval
}

// qDur is a duration for the table: 2m35s, 6h12m, 45s.
func qDur(d time.Duration) string {
	d = d.Round(time.Second)
	if d >= time.Hour {
		d = d.Truncate(time.Minute)
	}
	s := d.String()
	if d >= time.Minute && d%time.Minute == 0 {
		s = strings.TrimSuffix(s, "0s")
	}
	return s
}

func TestAlertQuality(t *testing.T) {
	scs := qScenarios()
	outcomes := make([]*qOutcome, len(scs))
	old := http.DefaultClient
	http.DefaultClient = &http.Client{Transport: qHeartbeats}
	t.Cleanup(func() { http.DefaultClient = old })
	t.Run("scenarios", func(t *testing.T) {
		for i, sc := range scs {
			o := &qOutcome{sc: sc}
			outcomes[i] = o
			t.Run(sc.name, func(t *testing.T) {
				t.Parallel()
				qReplay(t, sc, o)
				for _, n := range o.notes {
					t.Logf("%s: %s", sc.name, n)
				}
				for _, p := range o.problems {
					t.Logf("%s: %s", sc.name, p)
				}
			})
		}
	})
	if t.Failed() {
		return
	}
	for _, o := range outcomes {
		if o.observed == "" { // not run (-run picked others): no table
			return
		}
	}
	table := qTable(outcomes)
	t.Log("\n" + table)
	for _, o := range outcomes {
		known := knownMisses[o.sc.name]
		switch {
		case len(o.problems) > 0 && known == "":
			t.Errorf("%s misses: %s", o.sc.name, strings.Join(o.problems, "; "))
		case len(o.problems) == 0 && known != "":
			t.Errorf("%s passes now: delete it from knownMisses (%s)", o.sc.name, known)
		}
	}
	for name := range knownMisses {
		if !slices.ContainsFunc(scs, func(sc *qScenario) bool { return sc.name == name }) {
			t.Errorf("knownMisses names %s, which is no scenario", name)
		}
	}
	qCheckReadme(t, table)
}

const (
	qBegin = "<!-- alert-quality:begin (go test ./internal/daemon -run TestAlertQuality -update) -->\n"
	qEnd   = "<!-- alert-quality:end -->\n"
)

// qCheckReadme keeps README.md's table equal to the suite's.
func qCheckReadme(t *testing.T, table string) {
	path := filepath.Join(qRepo, "README.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	i, j := strings.Index(readme, qBegin), strings.Index(readme, qEnd)
	if *qUpdate {
		if i < 0 || j < i {
			t.Fatalf("README.md has no %q ... %q markers to update between", qBegin, qEnd)
		}
		readme = readme[:i+len(qBegin)] + table + readme[j:]
		if err := os.WriteFile(path, []byte(readme), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if i < 0 || j < i {
		t.Fatalf("README.md has no alert-quality table (markers %q, %q)", qBegin, qEnd)
	}
	if got := readme[i+len(qBegin) : j]; got != table {
		t.Errorf("README.md's alert-quality table is not the suite's: run go test ./internal/daemon -run TestAlertQuality -update\n--- README\n%s--- suite\n%s", got, table)
	}
}

// qTable is the README's table and summary.
func qTable(outs []*qOutcome) string {
	var b strings.Builder
	b.WriteString("| scenario | issue | expected | observed | time to page (max) | time to resolve (max) | false critical pages | result |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	pageScenarios, recalled, falseCrit, within := 0, 0, 0, 0
	var ttps, ttrs []time.Duration
	for _, o := range outs {
		sc := o.sc
		expect := sc.expect
		switch sc.expect {
		case qPage:
			expect = "page critical"
			pageScenarios++
			if o.paged && strings.HasSuffix(o.observed, "critical") {
				recalled++
				// A random backoff makes its times vary run to run: the
				// table stays reproducible without them.
				if !sc.jitter {
					ttps = append(ttps, o.ttp)
				}
			}
		case qTicket:
			expect = "ticket warning"
		case qVisible:
			expect = "refusal shown"
		}
		falseCrit += o.falsePages
		ttp := "-"
		switch {
		case sc.jitter && o.paged:
			// Random backoff: the times are not the same every run.
			ttp = "in time (PagerDuty's return + 10s)"
			if o.ttp > o.ttpMax {
				ttp = "late (PagerDuty's return + 10s)"
			}
		case o.paged || o.ticketed:
			ttp = qDur(o.ttp)
			if o.ttpMax > 0 && sc.expect == qPage {
				ttp += " (" + qDur(o.ttpMax) + ")"
			}
		}
		ttr := "-"
		switch {
		case o.resolved:
			ttr = qDur(o.ttr)
			ttrs = append(ttrs, o.ttr)
		case o.paged && o.openAfter > 0:
			ttr = "open > " + qDur(o.openAfter)
		}
		if o.ttrMax > 0 && sc.expect == qPage && sc.dieAt == 0 && !sc.sigterm {
			ttr += " (" + qDur(o.ttrMax) + ")"
		}
		res := "pass"
		if len(o.problems) > 0 {
			res = "miss"
			if k := knownMisses[sc.name]; k != "" {
				res = "miss (known)"
			}
		} else if sc.expect == qPage {
			within++
		}
		item := ""
		if sc.item != "" {
			item = "#" + sc.item
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %d | %s |\n", sc.name, item, expect, o.observed, ttp, ttr, o.falsePages, res)
	}
	fmt.Fprintf(&b, "\nRecall %d/%d (%s); false critical pages %d; page scenarios within every budget %d/%d",
		recalled, pageScenarios, qPct(recalled, pageScenarios), falseCrit, within, pageScenarios)
	if len(ttps) > 0 {
		fmt.Fprintf(&b, "; detection median %s, max %s", qDur(qMedian(ttps)), qDur(slices.Max(ttps)))
	}
	if len(ttrs) > 0 {
		fmt.Fprintf(&b, "; reset median %s, max %s", qDur(qMedian(ttrs)), qDur(slices.Max(ttrs)))
	}
	b.WriteString(".\n")
	b.WriteString("\nThe scenarios (times from the start of the fault; three days of history before each):\n\n")
	for _, o := range outs {
		fmt.Fprintf(&b, "- %s: %s.\n", o.sc.name, o.sc.story)
	}
	first := true
	for _, o := range outs {
		if len(o.problems) == 0 {
			continue
		}
		if first {
			b.WriteString("\nWhy each miss misses (observed):\n\n")
			first = false
		}
		ps := make([]string, len(o.problems))
		for i, p := range o.problems {
			if len(p) > 160 {
				p = p[:157] + "..."
			}
			ps[i] = strings.ReplaceAll(p, "|", "/")
		}
		fmt.Fprintf(&b, "- %s: %s.\n", o.sc.name, strings.Join(ps, "; "))
	}
	return b.String()
}

func qPct(n, d int) string {
	if d == 0 {
		return "-"
	}
	return strconv.Itoa(100*n/d) + "%"
}

func qMedian(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
