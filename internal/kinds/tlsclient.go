package kinds

import (
	"crypto/tls"
	"crypto/x509"
	"time"

	"github.com/prober-dev/prober/internal/config"
)

// TLSKeys are the fields of a TLS client's settings, read by DecodeTLS: a
// tls step's own, and a grpc step's tls: block.
var TLSKeys = []string{"server_name", "ca_file", "verify", "client_cert", "client_key"}

// TLSClient is how a kind's TLS client connects and what it trusts.
type TLSClient struct {
	ServerName string         // default: the address's host
	Roots      *x509.CertPool // nil: the system's
	Verify     bool           // a chain that does not verify fails the step (class tls); default true
	ClientCert *tls.Certificate
}

// DecodeTLS reads the TLSKeys of b.
func DecodeTLS(b *config.StepBlock) TLSClient {
	c := TLSClient{Verify: true}
	if v, ok := b.String("server_name", "a host name"); ok {
		c.ServerName = v
	}
	// An empty ca_file (`"${env:SHOP_CA_FILE:-}"` unset) is the system's
	// roots, so that one flow serves a sandbox with its own CA and a
	// public host alike.
	if p, ok := b.String("ca_file", "a file path"); ok && p != "" {
		if _, pem, ok := b.PEMFile("ca_file"); ok {
			c.Roots = x509.NewCertPool()
			c.Roots.AppendCertsFromPEM(pem)
		}
	}
	if v, ok := b.Bool("verify"); ok {
		c.Verify = v
	}
	_, cert, okc := b.File("client_cert", false)
	_, key, okk := b.File("client_key", true)
	switch {
	case b.Has("client_cert") != b.Has("client_key"):
		b.Errorf("", "client_cert and client_key go together")
	case okc && okk && cert != nil && key != nil: // nil: a secret validate did not read
		kp, err := tls.X509KeyPair(cert, key)
		if err != nil {
			b.Errorf("client_cert", "client_cert and client_key: %v", err)
		} else {
			c.ClientCert = &kp
		}
	}
	return c
}

// VerifyChain checks the chain a server sent for name, as a client would
// (roots nil: the system's). The tls kind and a tcp step's STARTTLS read
// the certificate even when it does not verify, so its dates and names
// still show in the result.
func VerifyChain(chain []*x509.Certificate, name string, roots *x509.CertPool, now time.Time) error {
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: name, CurrentTime: now})
	return err
}
