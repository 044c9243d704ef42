// Package certinfo is what expectations can read of a TLS connection: the
// server's certificate and the connection's version, shared by the tls
// step kind and HTTPS steps (cert.expires_in > 336h on the checkout's own
// connection).
package certinfo

import (
	"crypto/tls"
	"fmt"
	"strings"
	"time"

	"github.com/prober-dev/prober/internal/assert"
	"github.com/prober-dev/prober/internal/result"
)

// Operands are the cert.* and tls.* operands. The cert.* ones are the leaf
// certificate's.
var Operands = assert.Operands{
	"cert.expires_in":       assert.DurationOperand, // not after minus now (negative once expired)
	"cert.chain_expires_in": assert.DurationOperand, // the earliest not after of the chain the server sent
	"cert.not_after":        assert.StringOperand,   // RFC 3339, UTC
	"cert.not_before":       assert.StringOperand,
	"cert.issuer":           assert.StringOperand, // CN=R11,O=Let's Encrypt,C=US
	"cert.subject":          assert.StringOperand,
	"cert.sans":             assert.StringOperand, // DNS names and IP addresses, comma-separated
	"tls.version":           assert.StringOperand, // "TLS 1.3"
	"tls.cipher":            assert.StringOperand,
	"tls.verified":          assert.BoolOperand,   // the chain verifies for the server name
	"tls.verify_error":      assert.StringOperand, // why not, or ""
}

// Record sets the operands of r from a connection's state (which must hold
// the server's certificates) and the chain's verification (verr, nil when it
// verified), and returns the facts for the step's result: not after,
// subject, issuer, names, version, verification.
func Record(r *assert.Response, cs *tls.ConnectionState, verr error, now time.Time) []result.Attr {
	leaf := cs.PeerCertificates[0]
	earliest := leaf.NotAfter
	for _, c := range cs.PeerCertificates[1:] {
		if c.NotAfter.Before(earliest) {
			earliest = c.NotAfter
		}
	}
	sans := append([]string(nil), leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		sans = append(sans, ip.String())
	}
	notAfter := leaf.NotAfter.UTC().Format(time.RFC3339)
	verifyErr := ""
	if verr != nil {
		verifyErr = verr.Error()
	}
	subject, issuer, names, version := leaf.Subject.String(), leaf.Issuer.String(), strings.Join(sans, ", "), tls.VersionName(cs.Version)
	r.SetDuration("cert.expires_in", leaf.NotAfter.Sub(now))
	r.SetDuration("cert.chain_expires_in", earliest.Sub(now))
	r.SetString("cert.not_after", notAfter)
	r.SetString("cert.not_before", leaf.NotBefore.UTC().Format(time.RFC3339))
	r.SetString("cert.issuer", issuer)
	r.SetString("cert.subject", subject)
	r.SetString("cert.sans", names)
	r.SetString("tls.version", version)
	r.SetString("tls.cipher", tls.CipherSuiteName(cs.CipherSuite))
	r.SetBool("tls.verified", verr == nil)
	r.SetString("tls.verify_error", verifyErr)
	attrs := []result.Attr{
		{Name: "cert.not_after", Value: notAfter},
		{Name: "cert.subject", Value: subject},
		{Name: "cert.issuer", Value: issuer},
		{Name: "cert.sans", Value: names},
		{Name: "tls.version", Value: version},
		{Name: "tls.verified", Value: fmt.Sprint(verr == nil)},
	}
	if verifyErr != "" {
		attrs = append(attrs, result.Attr{Name: "tls.verify_error", Value: verifyErr})
	}
	return attrs
}

// NotAfter is the one fact an HTTPS step whose expectations read no cert.*
// operand still records: its leaf's not-after, for the certificate expiry
// metric (prober_cert_expiry_timestamp_seconds), without the cost of the
// rest. cs must hold the server's certificates.
func NotAfter(cs *tls.ConnectionState) result.Attr {
	return result.Attr{Name: "cert.not_after", Value: cs.PeerCertificates[0].NotAfter.UTC().Format(time.RFC3339)}
}
