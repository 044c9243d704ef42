package browserkind

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/kinds/kindtest"
	"github.com/prober-dev/prober/internal/result"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times (100 on
// Linux everywhere Go runs).
const clockTicks = 100

// treeCPU is the CPU time (user + system) of pid and its live
// descendants, from /proc.
func treeCPU(t testing.TB, pid int) time.Duration {
	var ticks int64
	for p := range withRoot(t, pid) {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/stat")
		if err != nil {
			continue
		}
		s := string(data)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 13 {
			u, _ := strconv.ParseInt(f[11], 10, 64)
			st, _ := strconv.ParseInt(f[12], 10, 64)
			ticks += u + st
		}
	}
	return time.Duration(ticks) * time.Second / clockTicks
}

// treePSS is the proportional set size of pid and its descendants: their
// shared pages counted once over all, unlike RSS.
func treePSS(t testing.TB, pid int) int64 {
	var kb int64
	for p := range withRoot(t, pid) {
		f, err := os.Open("/proc/" + strconv.Itoa(p) + "/smaps_rollup")
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "Pss:"); ok {
				n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				kb += n
			}
		}
		f.Close()
	}
	return kb << 10
}

func withRoot(t testing.TB, pid int) map[int]bool {
	ps := descendants(t, pid)
	ps[pid] = true
	return ps
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkBrowserFlow runs a 4-step browser flow (a login form, an
// account page with XHR, a search with select and key presses, a page
// reading the run's cookie) against a loopback shop, PROBER_BENCH_CONTEXTS
// runs at once (default 1), and reports per run the CPU time of Chromium
// (all its processes) and of the prober's side (this process, the shop
// included), and Chromium's memory (PSS) at the end over its idle PSS,
// per concurrent context.
//
//	PROBER_BENCH_CONTEXTS=2 go test -run '^$' -bench BrowserFlow -benchtime 20x ./internal/kinds/browserkind/
func BenchmarkBrowserFlow(b *testing.B) {
	conc, _ := strconv.Atoi(os.Getenv("PROBER_BENCH_CONTEXTS"))
	conc = max(conc, 1)
	k := New(Options{Concurrency: conc})
	defer k.Close()
	ctx := b.Context()
	if _, err := k.b.get(ctx); err != nil {
		b.Fatal(err)
	}
	first, _, _, _ := shop(b)
	f := flow(`  - name: login
    timeout: 30s
    browser:
      actions:
        - goto: ` + first.URL + `/login
        - fill: {selector: "#user", value: alice}
        - fill: {selector: "#pass", value: "{{secret:S}}"}
        - click: "#login"
        - wait_for: {url: /account}
  - name: account
    timeout: 30s
    browser:
      actions:
        - goto: ` + first.URL + `/account
        - wait_for: {text: "orders: 1"}
  - name: search
    timeout: 30s
    browser:
      actions:
        - goto: ` + first.URL + `/search
        - select: {selector: "#size", value: m}
        - fill: {selector: "#q", value: shoes}
        - press: {selector: "#q", key: Enter}
        - wait_for: {text: searched shoes}
  - name: cart
    timeout: 30s
    browser:
      actions:
        - goto: ` + first.URL + `/remember
    expect: [page.title == "In"]
`)
	pid := k.b.pid()
	// One run first: Chromium's helpers and caches settle.
	if run := kindtest.Run(b, "", f, k); run.Status != result.Passed {
		b.Fatalf("warm-up: %s", run.Summary())
	}
	time.Sleep(2 * time.Second)
	idle := treePSS(b, pid)
	cpu0, self0 := treeCPU(b, pid), selfCPU()
	var peak int64
	var mu sync.Mutex
	b.ResetTimer()
	var wg sync.WaitGroup
	next := make(chan struct{})
	go func() {
		for range b.N {
			next <- struct{}{}
		}
		close(next)
	}()
	for range conc {
		wg.Go(func() {
			for range next {
				run := kindtest.Run(b, "", f, k)
				if run.Status != result.Passed {
					b.Errorf("run: %s", run.Summary())
				}
				p := treePSS(b, pid)
				mu.Lock()
				peak = max(peak, p)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	cpu, self := treeCPU(b, pid)-cpu0, selfCPU()-self0
	n := float64(b.N)
	b.ReportMetric(cpu.Seconds()/n, "chromium-cpu-s/run")
	b.ReportMetric(self.Seconds()/n, "prober-cpu-s/run")
	b.ReportMetric(float64(idle)/(1<<20), "chromium-idle-MiB")
	b.ReportMetric(float64(peak-idle)/(1<<20)/float64(conc), "MiB/context")
	b.ReportMetric(float64(conc), "contexts")
}
