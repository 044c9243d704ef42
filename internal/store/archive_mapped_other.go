//go:build !linux

package store

// dropMappedPages is a no-op where madvise is not used.
func dropMappedPages(addr uintptr, n int64) error { return nil }
