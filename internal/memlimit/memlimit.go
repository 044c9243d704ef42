// Package memlimit finds the memory limit of the container (cgroup) the
// process runs in and sets Go's soft memory limit below it, so the garbage
// collector works harder as the heap nears the limit instead of the process
// being OOM-killed. It is what Prometheus 3 does with auto-gomemlimit.
package memlimit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// unlimited is where cgroup v1 limits start to mean "none": v1 reports no
// limit as the largest page-aligned int64 (9223372036854771712).
const unlimited = 1 << 62

// Detect returns the smallest cgroup memory limit that applies to the
// process, in bytes, and the file it was read from; 0 and "" when there is
// none. root is "/" except in tests. Missing files are not errors: they mean
// no cgroup, or not that version of it.
//
// A limit on a parent cgroup binds its children too, so both the process's
// own cgroup and its ancestors are read, up to the mount's root (which is the
// container's own cgroup under a cgroup namespace, whose path is then "/").
func Detect(root string) (limit int64, file string, err error) {
	v2, v1, err := ownCgroups(filepath.Join(root, "proc/self/cgroup"))
	if err != nil {
		return 0, "", err
	}
	for _, h := range []struct{ dir, cgroup, name string }{
		{"sys/fs/cgroup", v2, "memory.max"},
		{"sys/fs/cgroup/memory", v1, "memory.limit_in_bytes"},
	} {
		for dir := h.cgroup; ; dir = path.Dir(dir) {
			f := filepath.Join(root, h.dir, filepath.FromSlash(dir), h.name)
			n, err := readLimit(f)
			if err != nil {
				return 0, "", err
			}
			if n > 0 && (limit == 0 || n < limit) {
				limit, file = n, f
			}
			if dir == "/" {
				break
			}
		}
	}
	return limit, file, nil
}

// ownCgroups returns the process's cgroup v2 path and its cgroup v1 memory
// controller path from /proc/self/cgroup ("0::/path" and "N:...,memory,...:/path"),
// each "/" when absent so that the hierarchies' roots are still read.
func ownCgroups(file string) (v2, v1 string, err error) {
	v2, v1 = "/", "/"
	b, err := os.ReadFile(file)
	if absent(err) {
		return v2, v1, nil
	}
	if err != nil {
		return "", "", fmt.Errorf("memlimit: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		id, rest, ok1 := strings.Cut(sc.Text(), ":")
		controllers, p, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 || !strings.HasPrefix(p, "/") {
			return "", "", fmt.Errorf("memlimit: %s:%d: %q is not id:controllers:/path", file, n, sc.Text())
		}
		// Clean clamps "/.." (a cgroup outside our namespace) to "/" and
		// keeps the path from leaving the cgroup mount.
		p = path.Clean(p)
		switch {
		case id == "0" && controllers == "":
			v2 = p
		case containsField(controllers, "memory"):
			v1 = p
		}
	}
	if err := sc.Err(); err != nil {
		return "", "", fmt.Errorf("memlimit: %s: %w", file, err)
	}
	return v2, v1, nil
}

func containsField(list, name string) bool {
	for f := range strings.SplitSeq(list, ",") {
		if f == name {
			return true
		}
	}
	return false
}

// readLimit reads one limit file; 0 when it is absent or says there is no limit.
func readLimit(file string) (int64, error) {
	b, err := os.ReadFile(file)
	if absent(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("memlimit: %w", err)
	}
	n, err := parseLimit(string(b))
	if err != nil {
		return 0, fmt.Errorf("memlimit: %s: %w", file, err)
	}
	return n, nil
}

func absent(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// parseLimit parses the content of memory.max (v2: bytes or "max") or
// memory.limit_in_bytes (v1: bytes, no limit being a huge value). 0 means no
// limit; so does a limit of 0 bytes, which no soft limit could honour.
func parseLimit(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "max" {
		return 0, nil
	}
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is neither a number of bytes nor \"max\"", s)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("limit %q: %w", s, err)
	}
	if n >= unlimited {
		return 0, nil
	}
	return n, nil
}

// Apply sets Go's soft memory limit to ratio × the container's memory limit
// and logs it, unless ratio is 0 (disabled) or GOMEMLIMIT is set, which the
// runtime has already applied and which wins. ratio must be in (0,1]; others
// are ignored. The process's state comes in as functions so that tests
// change nothing: in production getenv is os.Getenv, detect is Detect("/")
// and set is debug.SetMemoryLimit.
func Apply(log *slog.Logger, ratio float64, getenv func(string) string, detect func() (int64, string, error), set func(int64) int64) {
	if !(ratio > 0 && ratio <= 1) {
		return
	}
	// The runtime treats an empty GOMEMLIMIT as unset, and so do we.
	if v := getenv("GOMEMLIMIT"); v != "" {
		log.Info("memory_limit_from_env", "gomemlimit", v)
		return
	}
	limit, file, err := detect()
	if err != nil {
		log.Warn("memory_limit_not_set", "error", err.Error())
		return
	}
	soft := int64(ratio * float64(limit))
	if soft <= 0 {
		log.Debug("memory_limit_not_set", "reason", "no cgroup memory limit found")
		return
	}
	set(soft)
	log.Info("memory_limit_set", "limit_bytes", soft, "cgroup_limit_bytes", limit, "file", file, "ratio", ratio)
}
