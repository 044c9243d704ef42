package shop

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"
)

// DefaultCertValidity is how long the sandbox's HTTPS certificate is valid
// from start-up: soon enough to expire that a certificate-expiry rule of
// 14 days warns about it at once, long enough that a check asking for more
// than 3 days passes (`prober demo` shows both).
const DefaultCertValidity = 10 * 24 * time.Hour

// certificate is the sandbox's HTTPS identity, made at start-up and kept in
// memory: a CA of its own and a leaf it signed for the loopback names.
type certificate struct {
	leaf     tls.Certificate
	caPEM    []byte
	notAfter time.Time
}

// newCertificate makes a CA (valid a year) and a leaf for 127.0.0.1, ::1
// and localhost valid from an hour before now (clock skew) until now plus
// validity.
func newCertificate(now time.Time, validity time.Duration) (*certificate, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("shop: CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "prober sandbox CA", Organization: []string{"prober sandbox"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("shop: CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("shop: CA certificate: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("shop: key: %w", err)
	}
	notAfter := now.Add(validity).Truncate(time.Second) // certificates hold seconds
	leafTmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "localhost", Organization: []string{"prober sandbox shop"}},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("shop: certificate: %w", err)
	}
	return &certificate{
		leaf:     tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		caPEM:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		notAfter: notAfter,
	}, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}
