package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The bare reference: plain net/http requests, a new connection each
// (DisableKeepAlives, as each of the prober's runs dials anew), against the
// same target at the schedule's rate, in a child process during the same
// measured time, so that the prober's CPU per step is read as a ratio that
// holds on a noisy machine. Its CPU is the child's own (getrusage), so the
// two do not count each other.

// bareEnv makes the harness binary run the bare loop: "URL RATE DURATION",
// or "URL max DURATION WORKERS" for its maximum: WORKERS requests in
// flight, each the moment the last ended.
const bareEnv = "PROBER_LOAD_BARE"

// bareResult is what the bare loop reports on its stdout.
type bareResult struct {
	Requests int64         `json:"requests"`
	Failed   int64         `json:"failed"`
	CPU      time.Duration `json:"cpu_ns"`
	Wall     time.Duration `json:"wall_ns"`
}

// perRequest is the bare loop's CPU per request.
func (b *bareResult) perRequest() time.Duration {
	if b == nil || b.Requests == 0 {
		return 0
	}
	return b.CPU / time.Duration(b.Requests)
}

// runBare is the child: requests at rate per second for d, each in its own
// goroutine (as runs are), then its result as JSON on stdout.
func runBare(spec string) error {
	f := strings.Fields(spec)
	if len(f) != 3 && !(len(f) == 4 && f[1] == "max") {
		return fmt.Errorf("%s=%q: want URL RATE DURATION or URL max DURATION WORKERS", bareEnv, spec)
	}
	url := f[0]
	d, err := time.ParseDuration(f[2])
	if err != nil {
		return fmt.Errorf("%s duration %q: %w", bareEnv, f[2], err)
	}
	workers, rate := 0, 0.0
	if f[1] == "max" {
		if workers, err = strconv.Atoi(f[3]); err != nil || workers <= 0 {
			return fmt.Errorf("%s workers %q: %v", bareEnv, f[3], err)
		}
	} else if rate, err = strconv.ParseFloat(f[1], 64); err != nil || rate <= 0 {
		return fmt.Errorf("%s rate %q: %v", bareEnv, f[1], err)
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	body := []byte(`{"user":"synthetic-1","password":"not-a-secret"}`)
	var (
		mu    sync.Mutex
		res   bareResult
		wg    sync.WaitGroup
		count int64
	)
	one := func() {
		defer wg.Done()
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		resp, err := client.Do(req)
		ok := err == nil
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			ok = err == nil && resp.StatusCode == http.StatusOK
		}
		mu.Lock()
		res.Requests++
		if !ok {
			res.Failed++
		}
		mu.Unlock()
	}
	cpu0, t0 := processCPU(), time.Now()
	if workers > 0 {
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Since(t0) < d {
					wg.Add(1)
					one()
				}
			}()
		}
		wg.Wait()
		res.CPU, res.Wall = processCPU()-cpu0, time.Since(t0)
		return json.NewEncoder(os.Stdout).Encode(&res)
	}
	tick := time.NewTicker(5 * time.Millisecond)
	for now := range tick.C {
		el := now.Sub(t0)
		if el >= d {
			break
		}
		for due := int64(el.Seconds() * rate); count < due; count++ {
			wg.Add(1)
			go one()
		}
	}
	tick.Stop()
	wg.Wait()
	res.CPU, res.Wall = processCPU()-cpu0, time.Since(t0)
	return json.NewEncoder(os.Stdout).Encode(&res)
}

// bareChild is a running bare loop.
type bareChild struct {
	cmd *exec.Cmd
	out *bufio.Reader
}

// startBare starts the bare loop against url at rate per second for d.
func startBare(url string, rate float64, d time.Duration) (*bareChild, error) {
	return startBareSpec(fmt.Sprintf("%s %g %s", url, rate, d))
}

// startBareMax starts the bare loop against url at its maximum, workers
// requests in flight, for d.
func startBareMax(url string, workers int, d time.Duration) (*bareChild, error) {
	return startBareSpec(fmt.Sprintf("%s max %s %d", url, d, workers))
}

func startBareSpec(spec string) (*bareChild, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), bareEnv+"="+spec)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the bare reference: %w", err)
	}
	return &bareChild{cmd: cmd, out: bufio.NewReader(stdout)}, nil
}

// wait returns the bare loop's result once it has finished.
func (c *bareChild) wait() (*bareResult, error) {
	var r bareResult
	err := json.NewDecoder(c.out).Decode(&r)
	if werr := c.cmd.Wait(); err == nil && werr != nil {
		err = werr
	}
	if err != nil {
		return nil, fmt.Errorf("the bare reference: %w", err)
	}
	return &r, nil
}

func (c *bareChild) kill() {
	if c.cmd.ProcessState == nil {
		c.cmd.Process.Kill()
		c.cmd.Wait()
	}
}
