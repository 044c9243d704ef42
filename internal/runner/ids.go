package runner

import (
	"encoding/hex"
	"math/rand/v2"
)

// IDs are random, not secret: math/rand/v2's global source (ChaCha8, seeded
// from the OS) is unpredictable enough for correlation and costs no syscall.

// newTraceID returns 32 lowercase hex digits, never all zero (W3C trace context).
func newTraceID() string {
	var b [16]byte
	for {
		putUint64(b[:8], rand.Uint64())
		putUint64(b[8:], rand.Uint64())
		if b != [16]byte{} {
			return hex.EncodeToString(b[:])
		}
	}
}

// newSpanID returns 16 lowercase hex digits, never all zero.
func newSpanID() string {
	var b [8]byte
	for {
		putUint64(b[:], rand.Uint64())
		if b != [8]byte{} {
			return hex.EncodeToString(b[:])
		}
	}
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	putUint64(b[:8], rand.Uint64())
	putUint64(b[8:], rand.Uint64())
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

func putUint64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (56 - 8*i))
	}
}

// traceparent builds the W3C header value for one span of a trace; its
// sampled flag is whether prober exports the run (Options.Sampled).
func traceparent(traceID, spanID string, unsampled bool) string {
	if unsampled {
		return "00-" + traceID + "-" + spanID + "-00"
	}
	return "00-" + traceID + "-" + spanID + "-01"
}
