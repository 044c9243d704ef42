package alert

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"time"
)

// ErrCorrupt is wrapped by every error of OpenDB that says the state file
// is damaged (as opposed to locked, unreadable or from a newer prober).
var ErrCorrupt = errors.New("alert state file is corrupt")

// CorruptError is what OpenDB returns for a damaged state file.
type CorruptError struct {
	Path   string
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("alert state %s is corrupt (%s)", e.Path, e.Reason)
}

func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// The bbolt file format (version 2), as far as checkFile needs it. bbolt
// reads pages through an mmap without bounds checks: a page id pointing
// past the file faults (a crash, not a panic), a branch pointing at its own
// page recurses until the stack overflows, and a freelist count of 2^60
// reads far beyond the page. None of these can be recovered from, so the
// file is walked here first, from plain reads, before bbolt sees it.
const (
	pageHeaderSize   = 16
	elementSize      = 16 // branch and leaf elements are both 16 bytes
	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	metaPageFlag     = 0x04
	freelistPageFlag = 0x10
	bucketLeafFlag   = 0x01
	boltMagic        = 0xED0CDAED
	boltVersion      = 2
	noFreelist       = ^uint64(0)
	metaChecksumOff  = 56 // the checksum covers the meta's first 56 bytes
	maxTreeDepth     = 64
)

var le = binary.NativeEndian // bbolt writes its structs in native byte order

type meta struct {
	pageSize       uint32
	root, freelist uint64
	pgid, txid     uint64
}

// readMeta decodes the meta page in b (a page's first bytes), or fails.
func readMeta(b []byte) (meta, error) {
	if len(b) < pageHeaderSize+metaChecksumOff+8 {
		return meta{}, errors.New("short")
	}
	m := b[pageHeaderSize:]
	if le.Uint32(m[0:]) != boltMagic {
		return meta{}, errors.New("bad magic")
	}
	if le.Uint32(m[4:]) != boltVersion {
		return meta{}, fmt.Errorf("format version %d", le.Uint32(m[4:]))
	}
	h := fnv.New64a()
	h.Write(m[:metaChecksumOff])
	if h.Sum64() != le.Uint64(m[metaChecksumOff:]) {
		return meta{}, errors.New("bad checksum")
	}
	return meta{
		pageSize: le.Uint32(m[8:]), root: le.Uint64(m[16:]), freelist: le.Uint64(m[32:]),
		pgid: le.Uint64(m[40:]), txid: le.Uint64(m[48:]),
	}, nil
}

// checker walks a bbolt file's page graph with bounds checks.
type checker struct {
	f        io.ReaderAt
	size     int64
	pageSize int64
	m        meta
	seen     map[uint64]bool // pages in use
	free     map[uint64]bool
}

// checkFile reports, as a sentence, why the bbolt file f of size bytes
// cannot be opened safely, or "" if its structure is sound: meta pages as
// bbolt chooses them, then every page reachable from the root bucket and
// the freelist, each in bounds, of the right type, referenced once, and
// every page either in use or free.
func checkFile(f io.ReaderAt, size int64) string {
	if size == 0 {
		return "the file is empty (0 bytes)"
	}
	c := &checker{f: f, size: size, seen: map[uint64]bool{}, free: map[uint64]bool{}}
	if why := c.meta(); why != "" {
		return why
	}
	if c.m.freelist != noFreelist {
		if why := c.freelist(); why != "" {
			return why
		}
	}
	if why := c.page(c.m.root, 0); why != "" {
		return why
	}
	for id := uint64(2); c.m.freelist != noFreelist && id < c.m.pgid; id++ {
		switch {
		case c.seen[id] && c.free[id]:
			return fmt.Sprintf("page %d is both in use and free", id)
		case !c.seen[id] && !c.free[id]:
			return fmt.Sprintf("page %d is neither in use nor free", id)
		}
	}
	return ""
}

// meta picks the meta page bbolt would: the valid one with the higher
// transaction id.
func (c *checker) meta() string {
	var buf [4096]byte
	read := func(off int64) []byte {
		n, _ := c.f.ReadAt(buf[:], off)
		return buf[:n]
	}
	m0, err0 := readMeta(read(0))
	c.pageSize = int64(m0.pageSize)
	if err0 != nil {
		// bbolt then looks for the second meta page at every page size.
		c.pageSize = 0
		for ps := int64(1024); ps <= 16<<20 && ps < c.size-1024; ps *= 2 {
			if m, err := readMeta(read(ps)); err == nil {
				c.pageSize = int64(m.pageSize)
				break
			}
		}
		if c.pageSize == 0 {
			return fmt.Sprintf("no valid meta page (%v)", err0)
		}
	}
	if c.pageSize < 1024 || c.pageSize > 1<<20 || c.pageSize&(c.pageSize-1) != 0 {
		return fmt.Sprintf("page size %d", c.pageSize)
	}
	if c.size < 2*c.pageSize {
		return fmt.Sprintf("truncated: %d bytes, less than two pages", c.size)
	}
	m1, err1 := readMeta(read(c.pageSize))
	a, b, errA, errB := m0, m1, err0, err1
	if m1.txid > m0.txid {
		a, b, errA, errB = m1, m0, err1, err0
	}
	switch {
	case errA == nil:
		c.m = a
	case errB == nil:
		c.m = b
	default:
		return fmt.Sprintf("no valid meta page (%v, %v)", err0, err1)
	}
	if int64(c.m.pageSize) != c.pageSize {
		return fmt.Sprintf("meta pages disagree on the page size (%d, %d)", c.pageSize, c.m.pageSize)
	}
	if c.m.pgid < 3 || c.m.pgid > uint64(c.size/c.pageSize) {
		return fmt.Sprintf("truncated: %d pages in use, %d bytes hold %d", c.m.pgid, c.size, c.size/c.pageSize)
	}
	c.seen[0], c.seen[1] = true, true
	return ""
}

// load reads page id with its overflow pages, checking its header. It marks
// the pages as in use.
func (c *checker) load(id uint64, wantFlags uint16) ([]byte, string) {
	if id < 2 || id >= c.m.pgid {
		return nil, fmt.Sprintf("page id %d out of range [2, %d)", id, c.m.pgid)
	}
	var hdr [pageHeaderSize]byte
	if _, err := c.f.ReadAt(hdr[:], int64(id)*c.pageSize); err != nil {
		return nil, fmt.Sprintf("page %d: %v", id, err)
	}
	if got := le.Uint64(hdr[0:]); got != id {
		return nil, fmt.Sprintf("page %d identifies itself as %d", id, got)
	}
	flags := le.Uint16(hdr[8:])
	if wantFlags == 0 && flags != branchPageFlag && flags != leafPageFlag || wantFlags != 0 && flags != wantFlags {
		return nil, fmt.Sprintf("page %d has type %#x", id, flags)
	}
	overflow := uint64(le.Uint32(hdr[12:]))
	if id+overflow >= c.m.pgid {
		return nil, fmt.Sprintf("page %d overflows past the last page", id)
	}
	for p := id; p <= id+overflow; p++ {
		if c.seen[p] {
			return nil, fmt.Sprintf("page %d is referenced twice", p)
		}
		c.seen[p] = true
	}
	b := make([]byte, int64(overflow+1)*c.pageSize)
	if _, err := c.f.ReadAt(b, int64(id)*c.pageSize); err != nil {
		return nil, fmt.Sprintf("page %d: %v", id, err)
	}
	return b, ""
}

func (c *checker) freelist() string {
	id := c.m.freelist
	b, why := c.load(id, freelistPageFlag)
	if why != "" {
		return "freelist: " + why
	}
	start, count := uint64(pageHeaderSize), uint64(le.Uint16(b[10:]))
	if count == 0xFFFF { // the real count is the first element
		count, start = le.Uint64(b[pageHeaderSize:]), pageHeaderSize+8
	}
	if count > (uint64(len(b))-start)/8 {
		return fmt.Sprintf("freelist: %d ids do not fit in page %d", count, id)
	}
	for i := range count {
		p := le.Uint64(b[start+8*i:])
		if p < 2 || p >= c.m.pgid {
			return fmt.Sprintf("freelist: page id %d out of range [2, %d)", p, c.m.pgid)
		}
		if c.free[p] {
			return fmt.Sprintf("freelist: page %d freed twice", p)
		}
		c.free[p] = true
	}
	return ""
}

// page checks a branch or leaf page and everything below it.
func (c *checker) page(id uint64, depth int) string {
	if depth > maxTreeDepth {
		return fmt.Sprintf("page %d: tree deeper than %d", id, maxTreeDepth)
	}
	b, why := c.load(id, 0)
	if why != "" {
		return why
	}
	if le.Uint16(b[8:]) == branchPageFlag {
		count := int(le.Uint16(b[10:]))
		if count == 0 || pageHeaderSize+count*elementSize > len(b) {
			return fmt.Sprintf("branch page %d: %d elements", id, count)
		}
		for i := range count {
			e := pageHeaderSize + i*elementSize
			pos, ksize := uint64(le.Uint32(b[e:])), uint64(le.Uint32(b[e+4:]))
			if uint64(e)+pos+ksize > uint64(len(b)) {
				return fmt.Sprintf("branch page %d: key %d out of the page", id, i)
			}
			if why := c.page(le.Uint64(b[e+8:]), depth+1); why != "" {
				return why
			}
		}
		return ""
	}
	return c.leaf(fmt.Sprintf("leaf page %d", id), b, depth)
}

// leaf checks a leaf page's elements (p is the page, or an inline bucket's
// page inside its parent's value) and the buckets they hold.
func (c *checker) leaf(what string, p []byte, depth int) string {
	if depth > maxTreeDepth {
		return what + ": buckets nested too deep"
	}
	if len(p) < pageHeaderSize || le.Uint16(p[8:]) != leafPageFlag {
		return what + ": not a leaf page"
	}
	count := int(le.Uint16(p[10:]))
	if pageHeaderSize+count*elementSize > len(p) {
		return fmt.Sprintf("%s: %d elements do not fit", what, count)
	}
	for i := range count {
		e := pageHeaderSize + i*elementSize
		flags := le.Uint32(p[e:])
		pos, ksize, vsize := uint64(le.Uint32(p[e+4:])), uint64(le.Uint32(p[e+8:])), uint64(le.Uint32(p[e+12:]))
		start := uint64(e) + pos
		if start+ksize+vsize > uint64(len(p)) {
			return fmt.Sprintf("%s: element %d out of the page", what, i)
		}
		if flags&bucketLeafFlag == 0 {
			continue
		}
		v := p[start+ksize : start+ksize+vsize]
		if len(v) < 16 {
			return fmt.Sprintf("%s: bucket %d has a %d-byte header", what, i, len(v))
		}
		if root := le.Uint64(v); root != 0 {
			if why := c.page(root, depth+1); why != "" {
				return why
			}
		} else if why := c.leaf(fmt.Sprintf("%s: inline bucket %d", what, i), v[16:], depth+1); why != "" {
			return why
		}
	}
	return ""
}

// checkOpenFile runs checkFile over f.
func checkOpenFile(f *os.File) (string, error) {
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	return checkFile(f, st.Size()), nil
}

// MoveAside renames the state file at path to path.corrupt-<time>, never
// over an existing file, so that OpenDB can start with fresh state while
// the damaged file is kept for inspection. It returns the new name.
func MoveAside(path string, now time.Time) (string, error) {
	base := path + ".corrupt-" + now.UTC().Format("20060102T150405Z")
	to := base
	for i := 2; ; i++ {
		if _, err := os.Lstat(to); errors.Is(err, fs.ErrNotExist) {
			break
		}
		to = fmt.Sprintf("%s-%d", base, i)
	}
	if err := os.Rename(path, to); err != nil {
		return "", fmt.Errorf("moving the alert state aside: %w", err)
	}
	return to, nil
}
