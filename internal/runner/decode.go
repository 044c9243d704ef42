package runner

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/andybalholm/brotli"

	"github.com/prober-dev/prober/internal/result"
)

// decodeBody returns the body expectations and captures read: raw itself,
// or raw decompressed when the response is gzip, deflate or br encoded and Go's
// transport left it so (it decodes only when it asked for gzip itself, not
// when a flow sets Accept-Encoding). The decoded size is bounded by limit
// like a plain body's, so a small bomb is body_too_large, not a heap; a
// corrupt stream is a network failure, as Go's own decoding reports it.
func decodeBody(resp *http.Response, raw []byte, limit int64) ([]byte, result.Class, string) {
	if resp.Uncompressed || len(raw) == 0 {
		return raw, "", ""
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
		// The decoder's window is at most 16 MiB; what it writes out is
		// bounded by readBody below, as gzip's is.
		zr = brotli.NewReader(bytes.NewReader(raw))
	default:
		return raw, "", ""
	}
	if err == nil {
		var out []byte
		out, err = readBody(nil, zr, -1, limit)
		if err == nil && int64(len(out)) > limit {
			return nil, result.BodyTooLarge, fmt.Sprintf("body larger than the %s limit once decoded (Content-Encoding: %s, %d bytes received, status %d)",
				formatBytes(limit), enc, len(raw), resp.StatusCode)
		}
		if err == nil {
			return out, "", ""
		}
	}
	return nil, result.Network, fmt.Sprintf("cannot decode the body (Content-Encoding: %s, %d bytes received, status %d): %v",
		enc, len(raw), resp.StatusCode, err)
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
