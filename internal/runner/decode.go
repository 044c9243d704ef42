package runner

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/andybalholm/brotli"
	"golang.org/x/sync/semaphore"

	"github.com/prober-dev/prober/internal/result"
)

// DefaultBrotliWindows is the memory NewTransports lets brotli decoders'
// windows hold at once: four streams declaring the largest window (16 MiB),
// or sixteen of the 4 MiB encoders commonly choose.
const DefaultBrotliWindows = 64 << 20

// brotliWindows bounds the memory the windows of concurrent br decodes hold
// across the flows sharing a Transports: a stream declares its window in its
// first bits and the decoder allocates up to that (a bomb's first
// meta-block claims it all at once), whatever body_limit lets through. A
// decode waits for its share, within the step's timeout. Streams are not
// refused for a window larger than body_limit: encoders declare 4 to 16 MiB
// for small bodies too, which then allocate little.
type brotliWindows struct {
	sem  *semaphore.Weighted
	size int64
}

func newBrotliWindows(size int64) *brotliWindows {
	return &brotliWindows{sem: semaphore.NewWeighted(size), size: size}
}

// acquire waits for n bytes of the budget (all of it if n is more) or for
// ctx to end. A nil budget (flows without a shared Transports) bounds
// nothing.
func (b *brotliWindows) acquire(ctx context.Context, n int64) (release func(), err error) {
	if b == nil || n == 0 {
		return func() {}, nil
	}
	n = min(n, b.size)
	if err := b.sem.Acquire(ctx, n); err != nil {
		return nil, fmt.Errorf("waiting for %s of memory for brotli windows (%s for all decodes at once): %w",
			formatBytes(n), formatBytes(b.size), err)
	}
	return func() { b.sem.Release(n) }, nil
}

// brotliWindow is the window a brotli stream declares in its first 1 to 7
// bits (RFC 7932 9.1), 1 KiB to 16 MiB; 0 for a large-window stream (RFC
// 9841), which the decoder refuses before allocating any.
func brotliWindow(first byte) int64 {
	bits := 16
	switch n, m := (first>>1)&7, (first>>4)&7; {
	case first&1 == 0:
	case n != 0:
		bits = 17 + int(n)
	case m > 1:
		bits = 8 + int(m)
	case m == 1:
		return 0
	default:
		bits = 17
	}
	return 1 << bits
}

// decodeBody returns the body expectations and captures read: raw itself,
// or raw decompressed when the response is gzip, deflate or br encoded and Go's
// transport left it so (it decodes only when it asked for gzip itself, not
// when a flow sets Accept-Encoding). The decoded size is bounded by limit
// like a plain body's, so a small bomb is body_too_large, not a heap; a
// corrupt stream is a network failure, as Go's own decoding reports it. A
// br decode first waits for its window in windows: an error (ctx's) is
// returned when ctx ended first.
func decodeBody(ctx context.Context, windows *brotliWindows, resp *http.Response, raw []byte, limit int64) ([]byte, result.Class, string, error) {
	if resp.Uncompressed || len(raw) == 0 {
		return raw, "", "", nil
	}
	enc := contentEncoding(resp.Header)
	var (
		zr  io.Reader
		err error
	)
	switch enc {
	case "gzip", "x-gzip":
		zr, err = gzip.NewReader(bytes.NewReader(raw))
	case "deflate":
		// HTTP's deflate is zlib-wrapped; some servers send raw deflate.
		zr, err = zlib.NewReader(bytes.NewReader(raw))
		if errors.Is(err, zlib.ErrHeader) {
			zr, err = flate.NewReader(bytes.NewReader(raw)), nil
		}
	case "br":
		// What the decoder writes out is bounded by readBody below, as
		// gzip's is; its window (at most 16 MiB) by windows.
		release, werr := windows.acquire(ctx, brotliWindow(raw[0]))
		if werr != nil {
			return nil, "", "", werr
		}
		defer release()
		zr = brotli.NewReader(bytes.NewReader(raw))
	default:
		return raw, "", "", nil
	}
	if err == nil {
		var out []byte
		out, err = readBody(nil, zr, -1, limit)
		if err == nil && int64(len(out)) > limit {
			return nil, result.BodyTooLarge, fmt.Sprintf("body larger than the %s limit once decoded (Content-Encoding: %s, %d bytes received, status %d)",
				formatBytes(limit), enc, len(raw), resp.StatusCode), nil
		}
		if err == nil {
			return out, "", "", nil
		}
	}
	return nil, result.Network, fmt.Sprintf("cannot decode the body (Content-Encoding: %s, %d bytes received, status %d): %v",
		enc, len(raw), resp.StatusCode, err), nil
}

// contentEncoding is the response's single coding, lower-cased; "" for
// none, identity, or stacked codings (gzip, br), which are left raw.
func contentEncoding(h http.Header) string {
	v := h.Values("Content-Encoding")
	if len(v) != 1 || strings.Contains(v[0], ",") {
		return ""
	}
	return strings.ToLower(strings.TrimSpace(v[0]))
}
