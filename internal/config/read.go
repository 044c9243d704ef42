package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// maxAuxFileSize bounds a secret or CA file (CA bundles run to a few hundred
// KiB).
const maxAuxFileSize = 4 << 20

// readBounded reads name from fsys, refusing anything but a regular file and
// more than limit bytes. The size the file system reports is not trusted:
// /dev/zero and a FIFO report 0 and read forever (and opening a FIFO blocks
// until a writer comes), so the type is checked before opening and the read
// itself is bounded.
func readBounded(fsys fs.FS, name string, limit int64) ([]byte, error) {
	return readRegular(name, func() (fs.FileInfo, error) { return fs.Stat(fsys, name) },
		func() (fs.File, error) { return fsys.Open(name) }, limit)
}

// readOSBounded is readBounded for an absolute path on the OS (secret and
// CA files outside the configuration directory).
func readOSBounded(p string) ([]byte, error) {
	return readRegular(p, func() (fs.FileInfo, error) { return os.Stat(p) },
		func() (fs.File, error) { return os.Open(p) }, maxAuxFileSize)
}

func readRegular(name string, stat func() (fs.FileInfo, error), open func() (fs.File, error), limit int64) ([]byte, error) {
	st, err := stat()
	if err != nil {
		return nil, err
	}
	if err := regular(name, st); err != nil {
		return nil, err
	}
	f, err := open()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// Checked again on the open file: it may have been replaced meanwhile.
	if st, err = f.Stat(); err != nil {
		return nil, err
	}
	if err := regular(name, st); err != nil {
		return nil, err
	}
	return readLimited(f, name, st.Size(), limit)
}

func readLimited(r io.Reader, name string, hint, limit int64) ([]byte, error) {
	// The reported size only sizes the first buffer; the LimitReader is what
	// bounds the read.
	b := make([]byte, 0, min(max(hint, 0), limit)+1)
	for {
		n, err := r.Read(b[len(b):min(int64(cap(b)), limit+1)])
		b = b[:len(b)+n]
		if int64(len(b)) > limit {
			return nil, &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf("larger than %d bytes", limit)}
		}
		if errors.Is(err, io.EOF) {
			return b, nil
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: name, Err: err}
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // grow
		}
	}
}

func regular(name string, st fs.FileInfo) error {
	m := st.Mode()
	if m.IsRegular() {
		return nil
	}
	what := "not a regular file"
	switch {
	case m.IsDir():
		what = "is a directory, not a file"
	case m&fs.ModeNamedPipe != 0:
		what = "is a named pipe (FIFO), not a regular file"
	case m&fs.ModeDevice != 0:
		what = "is a device, not a regular file"
	case m&fs.ModeSocket != 0:
		what = "is a socket, not a regular file"
	}
	return &fs.PathError{Op: "read", Path: name, Err: errors.New(what)}
}
