// Package kinds holds what the step kinds besides HTTP share; each kind is
// a package below it (tlskind, tcpkind) registered in
// internal/daemon/stepkinds.go.
package kinds

import (
	"net"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/template"
)

// Address reads the block's address: host:port, placeholders allowed. A
// literal address is checked at load; one built from variables when the
// step runs (WithPort).
func Address(b *config.StepBlock, defaultPort string) *template.Template {
	if !b.Has("address") {
		b.Errorf("", "%s needs an address (host:port)", b.Step().Kind)
		return nil
	}
	t, ok := b.Template("address", "an address (host:port)")
	if !ok {
		return nil
	}
	if t.IsLiteral() {
		s := t.String()
		if _, _, err := net.SplitHostPort(WithPort(s, defaultPort)); err != nil || s == "" {
			b.Errorf("address", "address %q is not host:port", s)
			return nil
		}
	}
	return t
}

// WithPort adds the default port to an address without one.
func WithPort(addr, port string) string {
	if port == "" {
		return addr
	}
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	if ip := net.ParseIP(addr); ip != nil && ip.To4() == nil {
		return net.JoinHostPort(addr, port) // a bare IPv6 address
	}
	return addr + ":" + port
}
