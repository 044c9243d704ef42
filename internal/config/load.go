package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/textproto"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/prober-dev/prober/internal/assert"
	"github.com/prober-dev/prober/internal/secret"
	"github.com/prober-dev/prober/internal/template"
)

// Options are the inputs of Load besides the files.
type Options struct {
	Env      func(name string) (string, bool)  // default os.LookupEnv; demo/tests inject
	ReadFile func(path string) ([]byte, error) // absolute paths (secret files, CA files); default a bounded read of regular files
	Region   string                            // --region flag; wins over everything
	// SkipSecrets checks the secrets: section but reads no value: for
	// `prober validate` on a machine without the daemon's environment.
	// Config.Secrets then maps every declared name to "", so such a config
	// must never run flows.
	SkipSecrets bool
	// Notifiers are the notifier types (one table: the daemon's,
	// daemon.NotifierKinds()); a config naming another type fails.
	Notifiers []NotifierKind
	// StepKinds are the step kinds (one table: the daemon's); a flow using
	// another fails. HTTP (HTTPKind) is one whether listed or not.
	StepKinds []StepKind
	// Every, when > 0, replaces every flow's schedule (--every of `prober
	// demo`). It must be at least 1s, like every: in files.
	Every time.Duration
	// RunOnStart makes every flow run_on_start (`prober demo`: something to
	// see at once).
	RunOnStart bool
}

// Built-in defaults, for settings neither a flow nor probes.yaml sets.
const (
	// 8315: no entry of Prometheus's "Default port allocations" list
	// (9115 is blackbox_exporter's, which often runs on the same host).
	defaultListen      = "127.0.0.1:8315"
	defaultConcurrency = 16
	defaultKeep        = 100
	defaultEvery       = 60 * time.Second
	defaultTimeout     = 30 * time.Second
	defaultStepTimeout = 10 * time.Second
	defaultBodyLimit   = 1 << 20
	defaultMaxRedirect = 10
	defaultInterval    = time.Second
	defaultWithin      = 10 * time.Second
	defaultRetries     = 1
)

// defaultKeepResponse is how much of a failed step's body is kept.
const defaultKeepResponse = 4 << 10

// Load reads probes.yaml at name inside fsys and every flow file it lists
// (paths relative to probes.yaml's directory). It returns the compiled
// configuration, or nil and Errors listing every problem found in all files.
func Load(fsys fs.FS, name string, o Options) (cfg *Config, err error) {
	if o.Env == nil {
		o.Env = os.LookupEnv
	}
	if o.ReadFile == nil {
		o.ReadFile = readOSBounded
	}
	l := &loader{expects: map[string]*assert.Expectation{}, values: map[string]*assert.Value{}, fsys: fsys, env: o.Env, readFile: o.ReadFile, region: o.Region, skipSecrets: o.SkipSecrets,
		every: o.Every, runOnStart: o.RunOnStart, probesName: name, via: map[string]string{}, secretValues: map[string]string{}, optionalUnset: map[string]bool{}, keyPEMs: map[string]string{}, notifierKinds: o.Notifiers, stepKinds: withHTTP(o.StepKinds)}
	if err := l.checkStepKinds(); err != nil {
		return nil, err
	}
	if err := l.checkNotifierKinds(); err != nil {
		return nil, err
	}
	defer func() {
		// A bug here must not take the daemon down on a config reload; it
		// becomes an error (which the fuzz test treats as a failure).
		if r := recover(); r != nil {
			l.errorAt(Pos{File: name}, "internal error (please report): %v\n%s", r, debug.Stack())
		}
		if len(l.errs) > 0 {
			cfg, err = nil, l.finalErrors()
			return
		}
		for _, k := range l.stepKinds {
			if c, ok := k.(Configured); ok && cfg != nil {
				c.Configure(cfg)
			}
		}
	}()
	return l.load(name), nil
}

type loader struct {
	fsys        fs.FS
	env         func(string) (string, bool)
	readFile    func(string) ([]byte, error)
	region      string
	skipSecrets bool
	every       time.Duration
	runOnStart  bool
	// notifierKinds are the registered notifier types (Options.Notifiers).
	notifierKinds []NotifierKind
	// stepKinds are the registered step kinds (Options.StepKinds), HTTP's
	// first.
	stepKinds []StepKind
	errs      Errors
	// secretValues are the resolved secrets, also used to scrub them from
	// error messages: an env value reused in a URL must not leak that way.
	secretValues map[string]string
	// optionalUnset are the secrets declared optional: true whose source is
	// not set: notifiers that need one are disabled, flows may not use one.
	optionalUnset map[string]bool
	// declared are the secrets declared in probes.yaml, resolved or not.
	declared map[string]bool
	// keyPEMs are the client keys read from files, by "client_key:PATH":
	// not declared secrets, but redacted as secrets are.
	keyPEMs map[string]string
	// Compiled expectations, capture values and templates, shared by every
	// step that writes the same text (they are immutable): 10,000 similar
	// flows hold one `status == 200`, not 10,000.
	expects   map[string]*assert.Expectation
	values    map[string]*assert.Value
	templates template.Interner
	shared    interns
	// flowMissing is set when a flow file could not be read or parsed:
	// rules naming its flow or dependencies are then not reported as
	// unknown, a cascade that would bury the one real error.
	flowMissing bool
	// probesName is probes.yaml's path, for messages.
	probesName string
	// included holds the text of each included file read (nil: it failed
	// and was reported); via notes, per included file, which include
	// brought it in, appended to the errors in it.
	included map[string][]byte
	via      map[string]string
}

// maxErrors bounds the errors collected: past that many, more would not
// help anyone, and a generated file with thousands of mistakes must not
// make Load slow (suggestions compare names pairwise).
const maxErrors = 1000

func (l *loader) errorAt(p Pos, format string, args ...any) {
	switch {
	case len(l.errs) < maxErrors:
		l.errs = append(l.errs, Error{Pos: p, Msg: fmt.Sprintf(format, args...) + l.viaNote(p.File)})
	case len(l.errs) == maxErrors:
		l.errs = append(l.errs, Error{Msg: fmt.Sprintf("too many errors; stopped after %d", maxErrors)})
	}
}

func (l *loader) tooManyErrors() bool { return len(l.errs) >= maxErrors }

func (l *loader) finalErrors() Errors {
	errs := l.errs.sorted()
	set := secret.NewSet(l.redacted())
	for i := range errs {
		errs[i].Msg = set.Redact(errs[i].Msg)
	}
	return errs
}

// redacted are the values errors must not show: the secrets and the
// client keys read from files.
func (l *loader) redacted() map[string]string {
	if len(l.keyPEMs) == 0 {
		return l.secretValues
	}
	all := maps.Clone(l.secretValues)
	maps.Copy(all, l.keyPEMs)
	return all
}

// common is what every flow inherits from probes.yaml.
type common struct {
	probes  *file
	vars    map[string]string
	secrets map[string]bool // declared names, resolved or not
	defs    *defaults
	metrics string // probes.yaml's metric level: the flows' unless they say
}

func (l *loader) load(name string) *Config {
	cfg := &Config{
		File:        name,
		Region:      "local",
		Listen:      defaultListen,
		Concurrency: defaultConcurrency,
		Store:       StoreConfig{Keep: defaultKeep},
		History:     HistoryConfig{RunsFor: DefaultHistoryRunsFor, MaxSizeMB: DefaultHistoryMaxSizeMB},
		Metrics:     MetricsDefault,
	}
	data, err := readBounded(l.fsys, name, maxFileSize)
	if err != nil {
		l.errorAt(Pos{}, "%s", readError(err)) // the message names the file
		return nil
	}
	f, root := l.parse(name, data)
	if root == nil || !f.isMapping(root, path.Base(name)) {
		return nil
	}
	o := f.topObject(root, path.Base(name), append([]string{"region", "listen", "concurrency", "browser_concurrency", "store", "history", "defaults", "vars", "secrets", "flows", "metrics", "tracing"}, topLevelAlerting...))
	l.setRegion(cfg, f, o.get("region"))
	if n := o.get("listen"); n != nil {
		if s, ok := f.plain(n, "a host:port address", "listen cannot use {{...}}"); ok && checkListen(f, n, s) {
			cfg.Listen = s
		}
	}
	if n := o.get("concurrency"); n != nil {
		if v, ok := f.integer(n, "concurrency", 1, 10000); ok {
			cfg.Concurrency = int(v)
		}
	}
	if n := o.get("browser_concurrency"); n != nil {
		if v, ok := f.integer(n, "browser_concurrency", 1, 64); ok {
			cfg.BrowserConcurrency = int(v)
		}
	}
	if n := o.get("store"); n != nil {
		so := f.object(n, "store", []string{"keep"})
		if k := so.get("keep"); k != nil {
			if v, ok := f.integer(k, "store.keep", 1, 100000); ok {
				cfg.Store.Keep = int(v)
			}
		}
	}
	if n := o.get("history"); n != nil {
		f.history(f.object(n, "history", []string{"enabled", "runs_for", "max_size_mb"}), &cfg.History)
	}
	c := &common{probes: f, vars: map[string]string{}, metrics: MetricsDefault}
	if n := o.get("metrics"); n != nil {
		if lv, ok := f.metricsLevel(n); ok {
			cfg.Metrics, c.metrics = lv, lv
		}
	}
	c.secrets = l.secrets(f, o.get("secrets"))
	l.declared = c.secrets
	if l.skipSecrets {
		unread := map[string]string{}
		for name := range c.secrets {
			unread[name] = ""
		}
		cfg.Secrets = secret.NewSet(unread)
	} else {
		cfg.Secrets = secret.NewSet(l.secretValues)
	}
	if l.every != 0 && l.every < time.Second {
		l.errorAt(Pos{}, "--every %s: the minimum is 1s", l.every)
	}
	l.varsInto(f, o.get("vars"), c.vars)
	c.defs = l.defaults(f, o.get("defaults"), c)

	names := map[string]Pos{}
	for _, e := range l.flowEntries(f, o) {
		fl, nameNode := l.flow(c, e)
		if fl == nil {
			l.flowMissing = true
			continue
		}
		if nameNode != nil && fl.Name != "" {
			if first, dup := names[fl.Name]; dup {
				l.errorAt(mkPos(fl.File, nameNode.Line, nameNode.Column),
					"duplicate flow name %s (first defined at %s)", quote(fl.Name), first)
			} else {
				names[fl.Name] = mkPos(fl.File, nameNode.Line, nameNode.Column)
			}
		}
		cfg.Flows = append(cfg.Flows, fl)
	}
	l.alerting(f, o, c, cfg)
	l.tracing(f, o.get("tracing"), c, cfg)
	if len(l.keyPEMs) > 0 {
		// Keys read from files are masked wherever secrets are.
		all := maps.Clone(l.keyPEMs)
		for _, name := range cfg.Secrets.Names() {
			all[name], _ = cfg.Secrets.Get(name)
		}
		cfg.Secrets = secret.NewSet(all)
	}
	return cfg
}

// setRegion applies the precedence --region > $PROBER_REGION > probes.yaml >
// "local", checking each value that is given and used.
func (l *loader) setRegion(cfg *Config, f *file, n *yaml.Node) {
	const rule = "must match [a-z0-9][a-z0-9_-]* (it becomes a Prometheus label value)"
	if n != nil {
		if s, ok := f.plain(n, "a region name", "region cannot use {{...}}"); ok {
			if validSlug(s) {
				cfg.Region = s
			} else {
				// Quote the source, not the expansion: an env value may be
				// something that should not be echoed.
				f.errorf(n, "region %s %s", quote(n.Value), rule)
			}
		}
	}
	from, v := "--region", l.region
	if v == "" {
		from = "$PROBER_REGION"
		v, _ = l.env("PROBER_REGION")
	}
	if v == "" {
		return
	}
	if !validSlug(v) {
		l.errorAt(Pos{}, "%s %s %s", from, quote(v), rule)
		return
	}
	cfg.Region = v
}

// checkListen checks a listen address. Messages quote the source, not the
// expansion (see setRegion).
func checkListen(f *file, n *yaml.Node, s string) bool {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		f.errorf(n, "listen address %s is not host:port: %v", quote(n.Value), unwrapAddrError(err))
		return false
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		f.errorf(n, "listen address %s has a bad port", quote(n.Value))
		return false
	}
	return true
}

func unwrapAddrError(err error) error {
	var ae *net.AddrError
	if errors.As(err, &ae) {
		return errors.New(ae.Err)
	}
	return err
}

// readError phrases a file error as "reading PATH: REASON".
func readError(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Sprintf("reading %s: %v", pe.Path, pe.Err)
	}
	return err.Error()
}

// readFile reads a path written in f: absolute paths from the OS (secret
// and CA files usually live outside the config tree), relative ones through
// the fs.FS, relative to f's directory. It returns the path to show.
func (f *file) readFile(p string) (string, []byte, error) {
	if path.IsAbs(p) || filepath.IsAbs(p) {
		b, err := f.l.readFile(p)
		return p, b, err
	}
	full := path.Join(f.dir, p)
	if !fs.ValidPath(full) {
		return p, nil, fmt.Errorf("%s is outside the configuration directory", quote(p))
	}
	b, err := readBounded(f.l.fsys, full, maxAuxFileSize)
	return full, b, err
}

// secrets resolves every declared secret, reporting the secret and its source
// but never a value. It returns the declared names.
func (l *loader) secrets(f *file, n *yaml.Node) map[string]bool {
	declared := map[string]bool{}
	if n == nil {
		return declared
	}
	if n.Kind != yaml.MappingNode {
		f.errorf(n, "expected a mapping of secrets (NAME: {env: VAR} or NAME: {file: /path}), got %s", describe(n))
		return declared
	}
	for _, p := range f.pairs(n) {
		if !validVarName(p.name) {
			f.errorf(p.key, "invalid secret name %s: use letters, digits, _, - and ., starting with a letter or _", quote(p.name))
			continue
		}
		declared[p.name] = true
		v, ok := l.resolveSecret(f, p, !l.skipSecrets)
		if !ok {
			continue
		}
		if secret.Short(v) {
			// Refused rather than redacted: masking a short value would
			// shred every message it happens to appear in (these errors
			// too, so it is not masked in them either).
			f.errorf(p.key, "secret %s is too short: %d characters, want at least %d", p.name,
				utf8.RuneCountInString(strings.Join(strings.Fields(v), " ")), secret.MinLen)
			continue
		}
		l.secretValues[p.name] = v
	}
	return declared
}

// resolveSecret checks a secret's source and, if read, reads its value.
func (l *loader) resolveSecret(f *file, p pair, read bool) (string, bool) {
	o := f.object(p.val, "secret", []string{"env", "file", "optional"})
	optional := false
	if v := o.get("optional"); v != nil {
		optional, _ = f.boolean(v)
	}
	envNode, fileNode := o.get("env"), o.get("file")
	if (envNode == nil) == (fileNode == nil) {
		if o.n.Kind == yaml.MappingNode || isNull(o.n) {
			f.errorf(p.key, "secret %s needs exactly one of env: or file:", p.name)
		}
		return "", false
	}
	if envNode != nil {
		name, ok := f.str(envNode, "an environment variable name")
		if !ok {
			return "", false
		}
		if !validEnvName(name) {
			f.errorf(envNode, "invalid environment variable name %s", quote(name))
			return "", false
		}
		if !read {
			return "", false
		}
		v, set := l.env(name)
		switch {
		case optional && v == "":
			l.optionalUnset[p.name] = true
			return "", false
		case !set:
			f.errorf(p.key, "secret %s: environment variable %s is not set", p.name, name)
			return "", false
		case v == "":
			f.errorf(p.key, "secret %s: environment variable %s is empty", p.name, name)
			return "", false
		}
		return v, true
	}
	pth, ok := f.plain(fileNode, "a file path", "secret file paths cannot use {{...}}")
	if !ok || !read {
		return "", false
	}
	shown, b, err := f.readFile(pth)
	if err != nil && optional && errors.Is(err, fs.ErrNotExist) {
		l.optionalUnset[p.name] = true
		return "", false
	}
	if err != nil {
		f.errorf(p.key, "secret %s: %s", p.name, readError(err))
		return "", false
	}
	// Files written by editors and `echo` end in a newline that is not
	// part of the secret.
	v := string(b)
	if s, ok := strings.CutSuffix(v, "\n"); ok {
		v = strings.TrimSuffix(s, "\r")
	}
	if v == "" {
		f.errorf(p.key, "secret %s: file %s is empty", p.name, shown)
		return "", false
	}
	return v, true
}

// varsInto adds the variables of mapping n to into. Values may use
// ${env:...} but not placeholders: they are substituted verbatim at run time.
func (l *loader) varsInto(f *file, n *yaml.Node, into map[string]string) {
	if n == nil {
		return
	}
	if n.Kind != yaml.MappingNode {
		f.errorf(n, "expected a mapping of variables, got %s", describe(n))
		return
	}
	for _, p := range f.pairs(n) {
		switch {
		case !validVarName(p.name):
			f.errorf(p.key, "invalid variable name %s: use letters, digits, _, - and ., starting with a letter or _", quote(p.name))
			continue
		case isBuiltin(p.name):
			f.errorf(p.key, "variable %s shadows the built-in variable of that name", quote(p.name))
			continue
		}
		// Defined even when the value is bad, so that its uses are not
		// reported as undefined on top.
		v, _ := f.plain(f.node(p.val), "a string value", "vars cannot use {{...}}; use ${env:NAME} for environment values")
		into[p.name] = v
	}
}

func (f *file) labelsInto(n *yaml.Node, into map[string]string) {
	if n == nil {
		return
	}
	if n.Kind != yaml.MappingNode {
		f.errorf(n, "expected a mapping of labels, got %s", describe(n))
		return
	}
	for _, p := range f.pairs(n) {
		if !validIdent(p.name) || strings.HasPrefix(p.name, "__") {
			f.errorf(p.key, "label name %s must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __", quote(p.name))
			continue
		}
		if v, ok := f.plain(f.node(p.val), "a string value", "labels cannot use {{...}}"); ok {
			into[p.name] = v
		}
	}
}

// defaults are the flow settings of probes.yaml's defaults: section.
type defaults struct {
	every, timeout, stepTimeout time.Duration
	retries                     int
	runOnStart                  bool
	http                        HTTPOptions
	headers                     []Header
	headerUses                  []use
}

func (l *loader) defaults(f *file, n *yaml.Node, c *common) *defaults {
	d := &defaults{
		every:       defaultEvery,
		timeout:     defaultTimeout,
		stepTimeout: defaultStepTimeout,
		retries:     defaultRetries,
		http:        HTTPOptions{BodyLimit: defaultBodyLimit, KeepResponse: defaultKeepResponse, FollowRedirects: true, MaxRedirects: defaultMaxRedirect},
	}
	o := f.object(n, "defaults", []string{"every", "timeout", "step_timeout", "retries", "body_limit", "keep_response", "follow_redirects", "max_redirects", "headers", "tls", "run_on_start", "auth"})
	if v := o.get("run_on_start"); v != nil {
		if b, ok := f.boolean(v); ok {
			d.runOnStart = b
		}
	}
	if v := o.get("retries"); v != nil {
		if r, ok := f.integer(v, "retries", 0, 3); ok {
			d.retries = int(r)
		}
	}
	if v := o.get("every"); v != nil {
		if e, ok := f.every(v); ok {
			d.every = e
		}
	}
	if v := o.get("timeout"); v != nil {
		if t, ok := f.positive(v, "timeout"); ok {
			d.timeout = t
		}
	}
	if v := o.get("step_timeout"); v != nil {
		if t, ok := f.positive(v, "step_timeout"); ok {
			if t > d.timeout {
				f.errorf(v, "step_timeout %s is longer than timeout %s", t, d.timeout)
			} else {
				d.stepTimeout = t
			}
		}
	}
	f.httpOptions(o, &d.http)
	if v := o.get("auth"); v != nil {
		if a, ok := l.auth(f, v, c); ok {
			d.http.Auth = a
		}
	}
	d.headers = f.headers(o.get("headers"), &d.headerUses)
	return d
}

func (f *file) every(n *yaml.Node) (time.Duration, bool) {
	d, ok := f.positive(n, "every")
	if ok && d < time.Second {
		// robfig/cron would silently run it every second instead.
		f.errorf(n, "every must be at least 1s, got %s", d)
		return 0, false
	}
	return d, ok
}

// httpOptions overlays the HTTP settings present in o on h.
func (f *file) httpOptions(o *object, h *HTTPOptions) {
	if v := o.get("body_limit"); v != nil {
		if b, ok := f.size(v, "body_limit"); ok {
			h.BodyLimit = b
		}
	}
	if v := o.get("keep_response"); v != nil {
		if b, ok := f.keepSize(v); ok {
			h.KeepResponse = b
		}
	}
	if v := o.get("follow_redirects"); v != nil {
		if b, ok := f.boolean(v); ok {
			h.FollowRedirects = b
		}
	}
	if v := o.get("max_redirects"); v != nil {
		if m, ok := f.integer(v, "max_redirects", 0, 100); ok {
			h.MaxRedirects = int(m)
		}
	}
	if v := o.get("tls"); v != nil {
		f.tls(v, h)
	}
}

// keepSize reads keep_response: a size, or 0 to keep none. It is kept
// for every failed step of every flow, so it is bounded well below body_limit's.
func (f *file) keepSize(n *yaml.Node) (int64, bool) {
	if f.isScalar(n) {
		if s, _, ok := f.envText(n); ok && strings.TrimSpace(s) == "0" {
			return 0, true
		}
	}
	v, ok := f.size(n, "keep_response")
	if ok && v > mib {
		f.errorf(n, "keep_response must be between 0 (keep none) and 1MiB, got %s", describe(n))
		return 0, false
	}
	return v, ok
}

func (f *file) tls(n *yaml.Node, h *HTTPOptions) {
	o := f.object(n, "tls", []string{"ca_file", "server_name", "insecure_skip_verify", "min_version", "client_cert", "client_key"})
	if v := o.get("ca_file"); v != nil {
		if p, ok := f.plain(v, "a file path", "tls.ca_file cannot use {{...}}"); ok {
			if p == "" {
				h.CAFile, h.CAPEM = "", nil
			} else if shown, b, err := f.readFile(p); err != nil {
				f.errorf(v, "tls.ca_file: %s", readError(err))
			} else if !x509.NewCertPool().AppendCertsFromPEM(b) {
				f.errorf(v, "tls.ca_file %s holds no PEM certificate", shown)
			} else {
				h.CAFile, h.CAPEM = shown, b
			}
		}
	}
	if v := o.get("server_name"); v != nil {
		if s, ok := f.plain(v, "a host name", "tls.server_name cannot use {{...}}"); ok {
			h.ServerName = s
		}
	}
	if v := o.get("insecure_skip_verify"); v != nil {
		if b, ok := f.boolean(v); ok {
			h.InsecureSkipVerify = b
		}
	}
	if v := o.get("min_version"); v != nil {
		if s, ok := f.plain(v, "a TLS version", "tls.min_version cannot use {{...}}"); ok {
			if ver, known := tlsVersions[strings.TrimPrefix(strings.TrimSpace(s), "TLS ")]; known {
				h.MinVersion = ver
			} else {
				f.errorf(v, "tls.min_version is one of \"1.0\", \"1.1\", \"1.2\", \"1.3\", got %s", quote(s))
			}
		}
	}
	f.clientCert(o.get("client_cert"), o.get("client_key"), h)
}

// tlsVersions are tls.min_version's values. Below 1.2 only for a legacy
// system a flow must still reach (1.2 is the default).
var tlsVersions = map[string]uint16{"1.0": tls.VersionTLS10, "1.1": tls.VersionTLS11, "1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13}

// clientCert reads tls.client_cert and tls.client_key, which come as a
// pair in one block (a certificate from defaults with a key from the flow
// would be a pair nobody wrote); "" for both clears the defaults'. Each is
// a file path or one {{secret:NAME}}: the PEM is the secret's value.
func (f *file) clientCert(cn, kn *yaml.Node, h *HTTPOptions) {
	if cn == nil && kn == nil {
		return
	}
	if cn == nil || kn == nil {
		at, has, lacks := cn, "client_cert", "client_key"
		if cn == nil {
			at, has, lacks = kn, "client_key", "client_cert"
		}
		f.errorf(at, "tls.%s needs tls.%s beside it (a client certificate is both or neither)", has, lacks)
		return
	}
	cshown, cb, ok1 := f.pemSource(cn, "tls.client_cert")
	kshown, kb, ok2 := f.pemSource(kn, "tls.client_key")
	if !ok1 || !ok2 {
		return
	}
	if cshown == "" || kshown == "" {
		if cshown != kshown {
			f.errorf(cn, "tls.client_cert and tls.client_key are both set or both empty")
			return
		}
		h.ClientCertFile, h.ClientKeyFile, h.ClientCert, h.ClientKey = "", "", nil, nil
		return
	}
	if cb == nil || kb == nil {
		// A secret not read (validate without --secrets): its shape is
		// all there is to check. Such a config never runs flows.
		h.ClientCertFile, h.ClientKeyFile, h.ClientCert, h.ClientKey = cshown, kshown, nil, nil
		return
	}
	if !strings.HasPrefix(kshown, "secret ") {
		// A key file is no declared secret, but is redacted as one.
		f.l.keyPEMs["client_key:"+kshown] = string(kb)
	}
	// The error of X509KeyPair names no key material, only what is wrong
	// (and the loader's errors are redacted besides).
	if _, err := tls.X509KeyPair(cb, kb); err != nil {
		f.errorf(cn, "tls.client_cert %s and tls.client_key %s are not a certificate and its key: %v", cshown, kshown, err)
		return
	}
	h.ClientCertFile, h.ClientKeyFile, h.ClientCert, h.ClientKey = cshown, kshown, cb, kb
}

// secretRef matches a value that is one {{secret:NAME}} and nothing else.
var secretRef = regexp.MustCompile(`^\{\{\s*secret:([^{}\s]+)\s*\}\}$`)

// pemSource reads a client_cert or client_key: a file path, or one
// {{secret:NAME}}. It returns what to show of it ("" for an empty value;
// "secret NAME" for a secret) and the PEM, nil for a secret not read.
func (f *file) pemSource(n *yaml.Node, key string) (string, []byte, bool) {
	if f.isScalar(n) && strings.Contains(n.Value, "{{") {
		m := secretRef.FindStringSubmatch(strings.TrimSpace(n.Value))
		if m == nil {
			f.errorf(n, "%s is a file path or one {{secret:NAME}} (the PEM is the secret's value), got %s", key, quote(n.Value))
			return "", nil, false
		}
		name := m[1]
		switch {
		case !f.l.declared[name]:
			f.errorf(n, "undefined secret %s (declare it under secrets: in probes.yaml)%s", quote(name), didYouMean(name, sortedKeys(f.l.declared)))
			return "", nil, false
		case f.l.optionalUnset[name]:
			f.errorf(n, "secret %s is optional and not set, but %s needs it", quote(name), key)
			return "", nil, false
		}
		v, ok := f.l.secretValues[name]
		if !ok {
			// Not read: validate skips secrets, or its own error is reported.
			return "secret " + name, nil, f.l.skipSecrets
		}
		return "secret " + name, []byte(v), true
	}
	p, ok := f.plain(n, "a file path", key+" cannot use {{...}}")
	if !ok || p == "" {
		return "", nil, ok
	}
	shown, b, err := f.readFile(p)
	if err != nil {
		f.errorf(n, "%s: %s", key, readError(err))
		return "", nil, false
	}
	return shown, b, true
}

// headerPairs walks a mapping of header names to values: the names are
// checked and deduplicated case-insensitively here, and value gets each
// good one's canonical name and value node (errors name the header, never
// its value). It returns false when n is not a mapping.
func (f *file) headerPairs(n *yaml.Node, value func(canon string, v *yaml.Node)) bool {
	if n.Kind != yaml.MappingNode {
		f.errorf(n, "expected a mapping of headers, got %s", describe(n))
		return false
	}
	seen := map[string]*yaml.Node{}
	for _, p := range f.pairs(n) {
		if !validToken(p.name) {
			f.errorf(p.key, "invalid header name %s", quote(p.name))
			continue
		}
		canon := textproto.CanonicalMIMEHeaderKey(p.name)
		if first, dup := seen[canon]; dup {
			f.errorf(p.key, "duplicate header %s (first at %s)", quote(p.name), f.pos(first))
			continue
		}
		seen[canon] = p.key
		value(canon, f.node(p.val))
	}
	return true
}

// headers compiles a mapping of header names to templated values.
func (f *file) headers(n *yaml.Node, uses *[]use) []Header {
	if n == nil {
		return nil
	}
	var out []Header
	f.headerPairs(n, func(canon string, v *yaml.Node) {
		ps, ok := f.pieces(v, "a header value", uses)
		if !ok {
			return
		}
		if s := pieceString(ps, ""); strings.ContainsAny(s, "\r\n") {
			f.errorf(v, "header %s: values cannot contain line breaks", canon)
			return
		}
		out = append(out, Header{Name: canon, Value: f.l.joinPieces(ps, template.Raw)})
	})
	return out
}

// overlayHeaders is base without the headers over sets (names are
// canonical), followed by over.
func overlayHeaders(base, over []Header) []Header {
	set := map[string]bool{}
	for _, h := range over {
		set[h.Name] = true
	}
	out := make([]Header, 0, len(base)+len(over))
	for _, h := range base {
		if !set[h.Name] {
			out = append(out, h)
		}
	}
	return append(out, over...)
}
