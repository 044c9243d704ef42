package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"time"
)

// The target is the system under test of the load harness: a minimal HTTP
// server answering every request with a small JSON body, as the sandbox
// shop's API would, and recording how long each request took on its side
// (handler entry to the response flushed). It runs in a child process so
// that its CPU is not counted as the prober's.

const targetBody = `{"status":"success","token":"tok-5f3a","order":{"id":"ord_123","amount_cents":1999,"currency":"EUR"}}`

// targetEnv makes the harness binary (or test binary) serve as the target.
const targetEnv = "PROBER_LOAD_TARGET"

type target struct {
	server atomic.Pointer[hist] // server-side duration of every request
	delay  time.Duration
}

func (t *target) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/stats":
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(t.server.Load().snap())
		return
	case "/reset":
		t.server.Store(&hist{})
		return
	}
	start := time.Now()
	_, _ = io.Copy(io.Discard, r.Body)
	if t.delay > 0 {
		time.Sleep(t.delay)
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, targetBody)
	w.(http.Flusher).Flush()
	t.server.Load().add(time.Since(start))
}

// serveTarget serves on listen until stdin closes (the harness exited) and
// prints "listening ADDR" once ready.
func serveTarget(listen string, delay time.Duration) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	fmt.Printf("listening %s\n", ln.Addr())
	t := &target{delay: delay}
	t.server.Store(&hist{})
	srv := &http.Server{Handler: t, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin) // the parent holds the other end
		srv.Close()
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// childTarget starts this binary as the target in a child process.
type childTarget struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	url   string
}

func startChildTarget(delay time.Duration) (*childTarget, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), targetEnv+"=127.0.0.1:0", "PROBER_LOAD_TARGET_DELAY="+delay.String())
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("target did not start: %w", err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if !ok {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("target said %q", line)
	}
	return &childTarget{cmd: cmd, stdin: stdin, url: "http://" + addr}, nil
}

func (c *childTarget) stop() {
	c.stdin.Close()
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
}

// targetStats fetches the target's server-side durations (nil when the
// target does not serve /stats, e.g. the sandbox shop).
func targetStats(ctx context.Context, base string) *hist {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/stats", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var s histSnap
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&s) != nil {
		return nil
	}
	return s.hist()
}

func targetReset(ctx context.Context, base string) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/reset", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
}
