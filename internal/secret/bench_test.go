package secret

import (
	"strings"
	"testing"
)

// benchSet is a realistic configuration: a handful of secrets of the
// lengths real credentials have.
func benchSet() *Set {
	return NewSet(map[string]string{
		"SHOP_PASSWORD": "pw-7d1e-LeakCanary",
		"API_TOKEN":     "tok_93abC0ffee5eed42",
		"PD_KEY":        "R0123456789abcdefABCDEF012345678",
		"SLACK_TOKEN":   "xoxb-1234-5678-LeakCanary0042",
		"WEIRD":         `ab"cd&ef<gh>\ij`,
	})
}

var benchMessages = map[string]string{
	"failure": `json.status == "success": got "processing" (a long explanation of what the body held, quoted and shortened …" (512 bytes)`,
	"logline": `{"time":"2026-12-07T11:00:00Z","level":"INFO","msg":"step","flow":"checkout","step":"pay","region":"eu-west-1","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","duration_ms":12.5,"status":200,"class":"ok","url":"https://shop.example/api/orders/123/pay"}`,
	"body4k":  strings.Repeat(`{"id":123,"name":"widget","price":"9.99","tags":["a","b"]},`, 70),
}

func BenchmarkRedact(b *testing.B) {
	s := benchSet()
	for name, msg := range benchMessages {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				_ = s.Redact(msg)
			}
		})
	}
}

func BenchmarkRedactMatch(b *testing.B) {
	s := benchSet()
	msg := `header.X-Echo == "nope": got "Basic dTpwdy03ZDFlLUxlYWtDYW5hcnk=" and tok_93abC0ffee5eed42 and ab\"cd&ef<gh>\\ij`
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		_ = s.Redact(msg)
	}
}
