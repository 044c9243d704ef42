package main

import (
	"errors"
	"log/slog"
	"os"
	"strconv"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// setMemoryLimit sets Go's soft memory limit to ratio × the memory limit
// cgroup reports (automemlimit, as Prometheus 3 does) and logs it, unless
// ratio is 0 (disabled) or GOMEMLIMIT is set, which the runtime has
// already applied and which wins. ratio must be in (0,1]; others are
// ignored. AUTOMEMLIMIT, the library's variable, overrides the ratio ("off"
// disables). cgroup is memlimit.FromCgroup but in tests.
func setMemoryLimit(log *slog.Logger, ratio float64, cgroup memlimit.Provider) {
	if !(ratio > 0 && ratio <= 1) {
		return
	}
	// The runtime treats an empty GOMEMLIMIT as unset, and so do we.
	if v := os.Getenv("GOMEMLIMIT"); v != "" {
		log.Info("memory_limit_from_env", "gomemlimit", v)
		return
	}
	if v, ok := os.LookupEnv("AUTOMEMLIMIT"); ok {
		if v == "off" {
			log.Info("memory_limit_from_env", "automemlimit", v)
			return
		}
		if r, err := strconv.ParseFloat(v, 64); err == nil {
			ratio = r // what the library applies; it refuses a bad one
		}
	}
	var found uint64
	limit, err := memlimit.Set(memlimit.WithRatio(ratio), memlimit.WithProvider(func() (uint64, error) {
		n, err := cgroup()
		switch {
		case errors.Is(err, memlimit.ErrNoCgroup), errors.Is(err, memlimit.ErrCgroupsNotSupported):
			return 0, memlimit.ErrNoLimit // no cgroup: nothing to stay under
		case err == nil && n == 0:
			// A limit of 0 bytes no soft limit could honour (and a soft
			// limit of 0 would make the GC run without pause).
			return 0, memlimit.ErrNoLimit
		}
		found = n
		return n, err
	}))
	switch {
	case err != nil:
		log.Warn("memory_limit_not_set", "error", err.Error())
	case found == 0:
		// The library leaves the limit at its default, none.
		log.Debug("memory_limit_not_set", "reason", "no cgroup memory limit found")
	default:
		log.Info("memory_limit_set", "limit_bytes", limit, "cgroup_limit_bytes", found, "ratio", ratio)
	}
}
