//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package alert

import (
	"os"
	"time"
)

// lockShared is a no-op where bbolt does not lock with flock: bbolt's own
// lock still stops a second writer when the file is opened.
func lockShared(*os.File, time.Duration) error { return nil }
