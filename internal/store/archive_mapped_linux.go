package store

import "syscall"

// dropMappedPages tells the kernel this process no longer needs the pages
// of [addr, addr+n) (bbolt's read-only, shared map of the file):
// MADV_DONTNEED on a shared file mapping only unmaps them, so that they
// stop counting in this process's RSS; the data stays in the file and in
// the page cache, and the next read faults it back in.
func dropMappedPages(addr uintptr, n int64) error {
	if n <= 0 {
		return nil
	}
	if _, _, e := syscall.Syscall(syscall.SYS_MADVISE, addr, uintptr(n), syscall.MADV_DONTNEED); e != 0 {
		return e
	}
	return nil
}
