package web

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"

	toolkit "github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/bcrypt"
)

// The web configuration file (--web.config.file) is the one every
// Prometheus exporter and Prometheus itself read: tls_server_config,
// basic_auth_users (bcrypt hashes), http_server_config, rate_limit. It is
// handled by the Prometheus exporter-toolkit rather than here, so the TLS
// options, bcrypt checks and file format are the ones operators already know
// and the toolkit's maintainers keep current.

// WebConfig says what a web configuration file turns on, for the log.
type WebConfig struct {
	TLS   bool     // HTTPS instead of HTTP
	Users []string // basic auth users, sorted; none means no authentication
}

// LoadWebConfig checks the web configuration file at path as Serve will use
// it (syntax, unknown fields, bcrypt hashes, certificate and key) and says
// what it enables. An empty path means plain HTTP without authentication.
// Errors name the file and never echo a password or hash.
func LoadWebConfig(path string) (WebConfig, error) {
	if path == "" {
		return WebConfig{}, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return WebConfig{}, fmt.Errorf("web config: %w", err)
	}
	var c struct {
		TLS   toolkit.TLSConfig `yaml:"tls_server_config"`
		Users map[string]string `yaml:"basic_auth_users"`
	}
	// Lenient here: the toolkit's strict parse below reports unknown fields.
	if err := yaml.Unmarshal(b, &c); err != nil {
		return WebConfig{}, fmt.Errorf("web config %s: %w", path, err)
	}
	var wc WebConfig
	for user, hash := range c.Users {
		// The toolkit's own message quotes the first byte of a value that is
		// not a hash: a plain password pasted here would leak a character.
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return WebConfig{}, fmt.Errorf("web config %s: basic_auth_users: %q: not a bcrypt hash (make one with: htpasswd -nbBC 10 '' PASSWORD | tr -d ':\\n')", path, user)
		}
		wc.Users = append(wc.Users, user)
	}
	slices.Sort(wc.Users)
	if err := toolkit.Validate(path); err != nil {
		return WebConfig{}, fmt.Errorf("web config %s: %w", path, err)
	}
	wc.TLS = c.TLS.IsEnabled() // what the toolkit goes by, once Validate passed
	return wc, nil
}

// Serve serves srv on ln, over TLS and with basic auth when the web
// configuration file at configPath says so (see LoadWebConfig); an empty
// path serves plain HTTP, as srv.Serve does. It returns what srv.Serve
// returns.
//
// The toolkit reads the file again on every request (users, headers, rate
// limit) and on every new TLS connection (certificate and key), so changes
// apply without a restart, certificate rotation included; a file that has
// turned bad fails requests (500) and handshakes rather than serve without
// protection, and is logged. Turning TLS on or off needs a restart.
func Serve(ln net.Listener, srv *http.Server, configPath string, log *slog.Logger) error {
	if configPath == "" {
		return srv.Serve(ln)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// The toolkit's Info lines ("Listening on", "TLS is enabled.") repeat the
	// daemon's own listening event; its warnings and errors (a file broken
	// while running, failed handshakes) are kept.
	log = slog.New(warnAndAbove{log.Handler()}).With("component", "web_config")
	return toolkit.Serve(ln, srv, &toolkit.FlagConfig{WebConfigFile: &configPath}, log)
}

type warnAndAbove struct{ slog.Handler }

func (h warnAndAbove) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && h.Handler.Enabled(ctx, l)
}
func (h warnAndAbove) WithAttrs(as []slog.Attr) slog.Handler {
	return warnAndAbove{h.Handler.WithAttrs(as)}
}
func (h warnAndAbove) WithGroup(name string) slog.Handler {
	return warnAndAbove{h.Handler.WithGroup(name)}
}
