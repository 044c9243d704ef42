//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package alert

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// lockShared takes a shared flock on f, waiting up to timeout: it conflicts
// with the exclusive lock bbolt holds while another process has the file
// open for writing. Closing f releases it.
func lockShared(f *os.File, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
		if err == nil || !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
