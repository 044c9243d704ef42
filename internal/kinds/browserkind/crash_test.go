package browserkind

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/kinds/kindtest"
	"github.com/prober-dev/prober/internal/result"
)

// descendants are the live processes under pid (not pid itself), from
// /proc.
func descendants(t testing.TB, pid int) map[int]bool {
	t.Helper()
	parent := map[int]int{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		data, err := os.ReadFile(p)
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ...: comm may hold spaces and parens.
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[i+1:])
		if len(f) < 2 || f[0] == "Z" {
			continue // a zombie is dead, waiting for its parent
		}
		id, _ := strconv.Atoi(strings.Fields(s)[0])
		ppid, _ := strconv.Atoi(f[1])
		parent[id] = ppid
	}
	out := map[int]bool{}
	for id := range parent {
		for p := parent[id]; p > 1; p = parent[p] {
			if p == pid {
				out[id] = true
				break
			}
		}
	}
	return out
}

// alive says whether pid is a live process (not a zombie).
func alive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z"
}

// TestCrashMidRun: Chromium killed while a run's second browser step
// waits fails that step as browser (not a timeout), and the run's
// cleanup browser step too (its context is gone); the next run starts a
// fresh browser and passes.
func TestCrashMidRun(t *testing.T) {
	k := newKind(t)
	first, _, fs, _ := shop(t)
	f := flow(`  - name: login
    timeout: 20s
    browser:
      actions:
        - goto: ` + first.URL + `/remember
  - name: wait
    timeout: 30s
    browser:
      actions:
        - goto: ` + first.URL + `/slow?hold
        - wait_for: {text: never shown}
cleanup:
  - name: undo
    timeout: 20s
    browser:
      actions:
        - goto: ` + first.URL + `/search
`)
	pid := k.b.pid()
	kids := descendants(t, pid)
	done := make(chan *result.Run, 1)
	go func() { done <- kindtest.Run(t, "", f, k) }()
	// Killed once the second step's page asked for its document.
	deadline := time.Now().Add(40 * time.Second)
	for {
		fs.mu.Lock()
		_, asked := fs.query["/slow"]
		fs.mu.Unlock()
		if asked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second step never loaded its page")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	run := <-done
	s := run.Steps[1]
	if run.Steps[0].Status != result.Passed || s.Class != result.Browser || !strings.Contains(s.Message(), "crashed") {
		t.Fatalf("steps: %s; second %s %q, want browser ... crashed", run.Summary(), s.Class, s.Message())
	}
	// The run's later browser steps find its context gone with the browser.
	if u := run.Steps[2]; u.Class != result.Browser || !strings.Contains(u.Message(), "crashed earlier in this run") {
		t.Errorf("cleanup after the crash: %s %q", u.Class, u.Message())
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the crash took %s to end the step: it waited for its timeout", d)
	}
	// Chromium's helpers die with it.
	wait := time.Now().Add(15 * time.Second)
	for len(aliveOf(kids)) > 0 && time.Now().Before(wait) {
		time.Sleep(100 * time.Millisecond)
	}
	if left := aliveOf(kids); len(left) > 0 {
		t.Errorf("processes of the killed browser still alive: %v", left)
	}

	run = kindtest.Run(t, "", strings.Replace(f, "- wait_for: {text: never shown}", "- wait_for: \"#pay\"", 1), k)
	if run.Status != result.Passed {
		t.Fatalf("the run after the crash: %s", run.Summary())
	}
	if k.b.starts != 2 || k.b.pid() == pid || k.b.pid() == 0 {
		t.Errorf("%d starts, pid %d (was %d), want a second browser", k.b.starts, k.b.pid(), pid)
	}
}

func aliveOf(pids map[int]bool) []int {
	var out []int
	for p := range pids {
		if alive(p) {
			out = append(out, p)
		}
	}
	return out
}

// TestHungPage: a page whose script never yields (its renderer is
// stuck) fails at the step's timeout, and the processes the step started
// (its renderer) are gone after the run: the browser has as many
// processes as before. Close leaves none.
func TestHungPage(t *testing.T) {
	k := newKind(t)
	first, _, _, _ := shop(t)
	pid := k.b.pid()
	// A first run settles the browser's helpers (GPU, network, storage).
	warm := flow("  - name: s\n    timeout: 20s\n    browser:\n      actions:\n        - goto: " + first.URL + "/search\n")
	if run := kindtest.Run(t, "", warm, k); run.Status != result.Passed {
		t.Fatalf("warm-up: %s", run.Summary())
	}
	settle := func(want int) int {
		n := len(descendants(t, pid))
		for end := time.Now().Add(15 * time.Second); n > want && time.Now().Before(end); n = len(descendants(t, pid)) {
			time.Sleep(100 * time.Millisecond)
		}
		return n
	}
	before := settle(0)
	const timeout = 6 * time.Second
	start := time.Now()
	run := kindtest.Run(t, "", flow("  - name: s\n    timeout: "+timeout.String()+"\n    browser:\n      actions:\n        - goto: "+first.URL+"/spin\n"), k)
	took := time.Since(start)
	if s := run.Steps[0]; s.Class != result.Timeout {
		t.Errorf("class %s %q, want timeout", s.Class, s.Message())
	}
	if took > timeout+8*time.Second {
		t.Errorf("a %s step took %s", timeout, took)
	}
	if after := settle(before); after > before {
		t.Errorf("%d browser processes after the hung page, %d before: %v", after, before, descendants(t, pid))
	}
	all := descendants(t, pid)
	all[pid] = true
	k.Close()
	wait := time.Now().Add(15 * time.Second)
	for len(aliveOf(all)) > 0 && time.Now().Before(wait) {
		time.Sleep(100 * time.Millisecond)
	}
	if left := aliveOf(all); len(left) > 0 {
		t.Errorf("processes alive after Close: %v", left)
	}
}
