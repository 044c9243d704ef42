// Package config loads probes.yaml and the flow files it names into a checked,
// compiled form: every template parsed, every expectation compiled, every
// variable reference resolved against what defines it, every schedule
// validated. Errors name file:line:col, all of them in one go.
package config

import (
	"time"

	"github.com/prober-dev/prober/internal/assert"
	"github.com/prober-dev/prober/internal/secret"
	"github.com/prober-dev/prober/internal/template"
)

// Config is the daemon configuration: probes.yaml and its flows.
type Config struct {
	File        string // path of probes.yaml as given
	Region      string // --region, else $PROBER_REGION, else probes.yaml's region, else "local"
	Listen      string // HTTP listen address, default 127.0.0.1:8315
	Concurrency int    // most flow runs at once, default 16
	Store       StoreConfig
	History     HistoryConfig // the run history on disk
	Flows       []*Flow
	Secrets     *secret.Set // every secret declared in probes.yaml, resolved
	Alerting    Alerting
	// Metrics is probes.yaml's metric level (MetricsDefault or
	// MetricsDetailed), each flow's unless its file says.
	Metrics string
	// Tracing exports runs as OpenTelemetry spans; nil (the default) is off.
	Tracing *Tracing

	// BrowserConcurrency is browser_concurrency: the most runs with a
	// browser context open at once (the browser kind's Configure reads
	// it); 0 when not set, the kind's default.
	BrowserConcurrency int
}

// StoreConfig bounds the in-memory store of recent results.
type StoreConfig struct {
	Keep int // runs kept per flow, default 100
}

// Flow is one compiled flow. A configuration of 10,000 flows made from one
// template holds flows that differ in their name, file, steps and often
// vars and labels, and in nothing else: that part is the Flow's own, and
// the rest, its FlowDef, is shared by pointer with every flow of the
// configuration equal in it (read only, as the whole configuration is):
// Flow's fields and FlowDef's read alike (fl.Name, fl.Timeout).
type Flow struct {
	Name   string
	File   string            // the flow file, for error messages and the status page
	Pos    Pos               // where the flow is defined
	Labels map[string]string // free-form, for routing and display
	// Vars are probes.yaml's vars overlaid by the flow file's and the flow
	// entry's (later wins), with ${env:...} resolved. Values may not hold
	// placeholders; built-ins and captures are provided by the runner.
	Vars    map[string]string
	Steps   []*Step // main steps, in order
	Cleanup []*Step // cleanup steps, in order; run after the main steps whatever happened
	*FlowDef
}

// FlowDef is what a flow is apart from its name, place, labels, vars and
// steps: shared by the flows of a configuration that are equal in it.
type FlowDef struct {
	// Description is for people (the status page): flows of one template
	// have none, or the same, and a Flow without it is a size class
	// smaller.
	Description string
	Schedule    Schedule
	Timeout     time.Duration // whole run, cleanup excluded; default 30s
	HTTP        HTTPOptions
	// Retries is how many times a failed run is run again at once to
	// confirm the failure (default 1, at most 3): a single blip never pages.
	Retries int
	// RunOnStart runs the flow once soon after the prober starts (or a
	// reload adds it), besides its schedule; otherwise its first run is
	// its first planned one (default false: a start never bursts).
	RunOnStart bool
	// Metrics is the flow's metric level: its file's `metrics:`, else
	// probes.yaml's.
	Metrics string
}

// Schedule is when a flow runs. Exactly one of Every and Cron is set.
type Schedule struct {
	Every    time.Duration
	Cron     string         // a standard 5-field spec (or @hourly etc.), validated at load
	Location *time.Location // for Cron; default UTC
}

// HTTPOptions apply to every request of a flow.
type HTTPOptions struct {
	BodyLimit          int64  // bytes read per response, default 1 MiB
	KeepResponse       int64  // bytes of a failed step's body kept in its result, default 4 KiB; 0 keeps no response
	FollowRedirects    bool   // default true
	InsecureSkipVerify bool   // verification off; never the default (beside the other bool: one word for both in every flow)
	MaxRedirects       int    // default 10
	CAFile             string // extra PEM roots, added to the system pool (path, for display)
	CAPEM              []byte // the CA file's contents, read at load
	ServerName         string // TLS SNI / verification name override
	MinVersion         uint16 // tls.VersionTLS1x; 0: the default, TLS 1.2
	// ClientCert and ClientKey are the PEM of a client certificate (mTLS),
	// both or neither, checked as a pair at load; the files' paths are
	// ClientCertFile and ClientKeyFile (for display; the key is never shown).
	ClientCertFile, ClientKeyFile string
	ClientCert, ClientKey         []byte
	// Auth is the auth: block's OAuth2 client credentials, or nil: the
	// token every HTTP step of the flow carries.
	Auth *OAuth2
}

// Pos is a place in a config file. Line and column are 32 bits: every
// step and flow keeps its Pos, and no config file has 2^31 lines.
type Pos struct {
	File string
	Line int32
	Col  int32
}

// Step is one check with expectations and captures: what every kind of
// step shares. What the step does is its kind's (Kind, Spec): HTTP's
// request: block (HTTPSpec) or a registered kind's.
//
// A configuration of 10,000 flows made from one template holds 40,000
// steps that differ, often, in what they send (a URL, a body), and in
// nothing else. So a Step is that part (its Spec and their templates), and
// the rest, its StepDef, is shared by pointer with every equal step of the
// configuration (read only, as the whole configuration is): Step's fields
// and StepDef's read alike (st.Name, st.Expect). Steps equal in that part
// too are one Step, shared by their flows: a step keeps no place (where it
// is written is the loader's, for its messages; nothing read it later),
// which would make each one its own.
type Step struct {
	// Spec is what the step's StepKind decoded from its block, which the
	// runner executes (*HTTPSpec for HTTP); shared with equal steps when
	// its kind shares equal specs (HTTPKind does).
	Spec any
	// Templates are the placeholders of Spec's fields (StepBlock.Template),
	// so the runner can tell which variables a step needs.
	Templates []*template.Template
	*StepDef
}

// StepDef is what a step is apart from its place and its Spec: shared by
// the steps of a configuration that are equal in it.
//
// The bools are kept together at the end so that padding does not grow
// each one.
type StepDef struct {
	Name       string
	Dependency string // e.g. "bank-gateway": counted in dependency success

	// Kind is the name of the step's kind in results: "" for an HTTP step
	// (results have always left HTTP steps unnamed), else the registered
	// StepKind's ("tls").
	Kind string
	// Method is what the step does, for display: the HTTP method, or the
	// kind's name in capitals ("TLS").
	Method string

	Timeout  time.Duration // per attempt; default 10s, never more than the flow timeout
	Expect   []*assert.Expectation
	Until    *Until
	Retry    *Retry // nil: one try
	Captures []Capture

	Cleanup bool
	// StatusChecked is true when some expectation reads the status; if not,
	// the runner fails any status >= 400.
	StatusChecked bool
	// ReadsAttrs is true when the step's expectations or captures read its
	// kind's own operands (cert.*, tls.*): a kind may skip recording them
	// otherwise, as HTTP steps do their connection's certificate.
	ReadsAttrs bool
}

// Header is a request header whose value may hold placeholders.
type Header struct {
	Name  string // canonical form
	Value *template.Template
}

// Param is a query or form parameter.
type Param struct {
	Name  string
	Value *template.Template
}

// BodyKind says how a request body is built.
type BodyKind uint8

const (
	NoBody   BodyKind = iota
	JSONBody          // Template holds the JSON text with JSON-escaped placeholders
	FormBody          // Form holds the fields
	RawBody           // Template holds the raw text
)

// Body is a request body.
type Body struct {
	Kind        BodyKind
	Template    *template.Template // JSONBody, RawBody
	Form        []Param            // FormBody
	ContentType string             // default application/json, application/x-www-form-urlencoded or text/plain
}

// BasicAuth credentials.
type BasicAuth struct {
	User     *template.Template
	Password *template.Template
}

// Until makes a step poll: the request is repeated every Interval until all of
// Expect hold or Within has passed since the step began.
type Until struct {
	Expect   []*assert.Expectation
	Interval time.Duration // default 1s
	Within   time.Duration // default 10s; never more than the flow timeout
}

// Capture stores a value read from a response into a variable for later steps.
type Capture struct {
	Name  string
	Value *assert.Value
}

// Builtins are the variables the runner defines for every run; flows may use
// them without defining them.
var Builtins = []string{
	"flow",            // the flow's name
	"region",          // the prober's region
	"run_id",          // unique per run
	"idempotency_key", // unique per run, stable across polling attempts; send it where a retry must not act twice
	"trace_id",        // the run's W3C trace id (32 hex)
	"timestamp",       // Unix seconds at run start
	"timestamp_ms",    // Unix milliseconds at run start
	"uuid",            // a fresh random UUID at each expansion
}
