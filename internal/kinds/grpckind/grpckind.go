// Package grpckind is the grpc step kind: it calls the standard health
// service of a gRPC server (grpc.health.v1.Health/Check) and exposes the
// call's status and the service's serving status to expectations:
// grpc.status == "OK", serving == "SERVING". With method: it makes a unary
// call instead, its types found through server reflection, from a JSON
// request to a JSON body.
package grpckind

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/prober-dev/prober/internal/assert"
	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/kinds"
	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/runner"
	"github.com/prober-dev/prober/internal/template"
)

// Kind is the grpc step kind, for config.Options.StepKinds.
type Kind struct{}

// Name implements config.StepKind.
func (Kind) Name() string { return "grpc" }

// Keys implements config.StepKind.
func (Kind) Keys() []string {
	return []string{"address", "service", "tls", "metadata", "method", "request"}
}

// Operands implements config.StepKind.
func (Kind) Operands() assert.Operands { return Operands }

// Builtins implements config.StepKind: the response, as JSON, is the body.
func (Kind) Builtins() assert.Source { return assert.SourceBody | assert.SourceJSON }

// healthMethod is the health check's full method name.
const healthMethod = "/grpc.health.v1.Health/Check"

// Operands are what grpc steps' expectations read (besides duration).
var Operands = assert.Operands{
	"grpc.status":  assert.StringOperand, // the call's status code: OK, UNAVAILABLE, NOT_FOUND, ...
	"grpc.message": assert.StringOperand, // the status message, "" when OK
	"serving":      assert.StringOperand, // SERVING, NOT_SERVING, SERVICE_UNKNOWN (NOT_FOUND), UNKNOWN; "" for a method:
}

// Spec is a decoded grpc: block; it runs as a runner.Executor.
type Spec struct {
	Address  *template.Template
	Service  *template.Template // nil: "" (the server as a whole)
	TLS      *kinds.TLSClient   // nil: plaintext (h2c)
	Metadata []config.Param     // names in lower case
	Method   string             // package.Service/Method: a unary call through server reflection instead of the health check
	Request  *template.Template // its request, JSON; nil: {}
	// step is the step decoded, for its expectations (read when it runs:
	// they are decoded after the block): a step that checks none of the
	// kind's operands passes only on OK and SERVING.
	step *config.Step
}

// reserved are metadata names the prober sets itself, or gRPC does.
var reserved = map[string]string{
	"traceparent":                           "is set by the prober (the step's trace context)",
	"tracestate":                            "is set by the prober",
	strings.ToLower(runner.HeaderSynthetic): "is set by the prober",
	"content-type":                          "is set by gRPC",
	"te":                                    "is set by gRPC",
	"user-agent":                            "is set by gRPC",
	"connection":                            "is not allowed in HTTP/2",
}

// Decode implements config.StepKind.
func (Kind) Decode(b *config.StepBlock) any {
	s := &Spec{Address: kinds.Address(b, ""), step: b.Step()}
	if t, ok := b.Template("service", "a service name"); ok {
		s.Service = t
	}
	if tb, ok := b.Block("tls", kinds.TLSKeys); ok {
		c := kinds.DecodeTLS(tb)
		s.TLS = &c
	} else if on, ok := b.Bool("tls"); ok && on {
		s.TLS = &kinds.TLSClient{Verify: true}
	}
	if md, ok := b.Map("metadata", "metadata", checkKey); ok {
		for i := range md {
			md[i].Name = strings.ToLower(md[i].Name)
		}
		s.Metadata = md
	}
	decodeCall(b, s)
	return s
}

// checkKey says what is wrong with a metadata name, or "".
func checkKey(name string) string {
	k := strings.ToLower(name)
	if why := reserved[k]; why != "" {
		return fmt.Sprintf("metadata %s %s", k, why)
	}
	if strings.HasPrefix(k, "grpc-") {
		return fmt.Sprintf("metadata %s: names starting grpc- are gRPC's own", k)
	}
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Sprintf("metadata name %q: only letters, digits, -, _ and . are allowed", name)
		}
	}
	return ""
}

// Execute implements runner.Executor.
func (s *Spec) Execute(ctx context.Context, x *runner.Exchange) (result.Class, string) {
	in, err := s.expand(x)
	if err != nil {
		return x.Classify(err, runner.Phase{})
	}
	scheme, path := "grpc://", in.service
	if s.TLS != nil {
		scheme = "grpcs://"
	}
	if s.Method != "" {
		path = s.Method
	}
	x.Target(scheme + in.addr + "/" + path)
	if _, _, err := net.SplitHostPort(in.addr); err != nil {
		return result.Request, fmt.Sprintf("address %q is not host:port", in.addr)
	}
	cc, tr, err := s.client(ctx, x, in.addr)
	if err != nil {
		return result.Request, "grpc: " + err.Error()
	}
	defer cc.Close()
	// The call has no deadline of its own, or gRPC would send it
	// (grpc-timeout) and the server would race the prober to call the
	// timeout; it is cancelled when the step's time is up.
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	defer context.AfterFunc(ctx, cancel)()
	cctx = metadata.NewOutgoingContext(cctx, in.md)

	if s.Method == "" {
		resp, err := healthpb.NewHealthClient(cc).Check(cctx, &healthpb.HealthCheckRequest{Service: in.service})
		tr.timings(x.Timings())
		if class, msg := tr.failure(ctx, x, err, healthMethod); class != "" {
			return class, msg
		}
		serving := healthpb.HealthCheckResponse_UNKNOWN.String()
		var body []byte
		switch {
		case err == nil:
			serving = resp.GetStatus().String()
			body, _ = marshal(resp)
		case status.Code(err) == codes.NotFound:
			// The health protocol answers NOT_FOUND for a service it
			// does not know; Watch would say SERVICE_UNKNOWN.
			serving = healthpb.HealthCheckResponse_SERVICE_UNKNOWN.String()
		}
		return s.record(x, err, serving, body)
	}
	body, err := call(cctx, cc, s.Method, in.request)
	tr.timings(x.Timings())
	var re *reflectError
	if msg, ok := isPrepare(err); ok {
		return result.Request, "grpc: " + msg
	} else if errors.As(err, &re) {
		if class, msg := tr.failure(ctx, x, re.err, reflectMethod); class != "" {
			return class, msg
		}
		st := status.Convert(re.err)
		return result.Request, fmt.Sprintf("grpc: server reflection (needed for method:): %s %s", CodeName(st.Code()), short(st.Message()))
	}
	if class, msg := tr.failure(ctx, x, err, "/"+s.Method); class != "" {
		return class, msg
	}
	return s.record(x, err, "", body)
}

// inputs are a spec's templates expanded for one attempt.
type inputs struct {
	addr, service, request string
	md                     metadata.MD // with the prober's own
}

func (s *Spec) expand(x *runner.Exchange) (in inputs, err error) {
	if in.addr, err = x.Expand(s.Address); err != nil {
		return in, err
	}
	if in.service, err = x.Expand(s.Service); err != nil {
		return in, err
	}
	if in.request, err = x.Expand(s.Request); err != nil {
		return in, err
	}
	in.md = metadata.MD{}
	for _, p := range s.Metadata {
		v, err := x.Expand(p.Value)
		if err != nil {
			return in, err
		}
		in.md.Append(p.Name, v)
	}
	in.md.Set("traceparent", x.Traceparent())
	in.md.Set("tracestate", runner.TraceState)
	in.md.Set(runner.HeaderSynthetic, "true")
	return in, nil
}

// client makes the attempt's connection (on its first call), with a
// tracker of how far it gets.
func (s *Spec) client(ctx context.Context, x *runner.Exchange, addr string) (*grpc.ClientConn, *tracker, error) {
	tr := &tracker{start: x.Started(), answered: map[string]bool{}}
	creds := insecure.NewCredentials()
	if s.TLS != nil {
		creds = &trackTLS{TransportCredentials: credentials.NewTLS(s.tlsConfig(tr)), tr: tr}
	}
	// One connection per attempt, through the runner's dialer: a probe
	// measures connecting too, and a reused connection would hide a
	// server that no longer accepts new ones.
	cc, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(creds),
		grpc.WithContextDialer(func(_ context.Context, a string) (net.Conn, error) {
			return tr.dial(ctx, x, a)
		}),
		grpc.WithStatsHandler(tr),
		grpc.WithDisableRetry(),
	)
	return cc, tr, err
}

// record sets the operands, attributes and body of an answer (err is the
// status the server sent, or nil), and applies the default rule: OK (and
// SERVING for a health check) unless expectations read the operands.
func (s *Spec) record(x *runner.Exchange, err error, serving string, body []byte) (result.Class, string) {
	st := status.Convert(err)
	code, msg := CodeName(st.Code()), st.Message()
	r := x.Response()
	r.SetString("grpc.status", code)
	r.SetString("grpc.message", msg)
	r.SetString("serving", serving)
	r.Body = append(r.Body[:0], body...)
	x.BodyBytes(int64(len(body)))
	x.Attr("grpc.status", code)
	x.Attr("grpc.message", short(msg))
	if s.Method == "" {
		x.Attr("serving", serving)
	}
	if code == "OK" && (s.Method != "" || serving == "SERVING") || s.checked() {
		return "", ""
	}
	const rule = "; without an expectation on grpc.status, grpc.message or serving, only OK"
	switch {
	case s.Method != "":
		return result.Assertion, fmt.Sprintf("grpc.status %s %q%s passes", code, short(msg), rule)
	case code != "OK":
		return result.Assertion, fmt.Sprintf("grpc.status %s %q (serving %s)%s and SERVING pass", code, short(msg), serving, rule)
	}
	return result.Assertion, fmt.Sprintf("serving %s (grpc.status %s)%s and SERVING pass", serving, code, rule)
}

// checked says whether the step's expectations (or until) read the kind's
// operands: then they, not the default rule, decide.
func (s *Spec) checked() bool {
	if s.step == nil {
		return false
	}
	exps := s.step.Expect
	if s.step.Until != nil {
		exps = append(exps[:len(exps):len(exps)], s.step.Until.Expect...)
	}
	for _, e := range exps {
		if e.Sources()&assert.SourceAttr != 0 {
			return true
		}
	}
	return false
}

func (s *Spec) tlsConfig(tr *tracker) *tls.Config {
	return &tls.Config{
		ServerName: s.TLS.ServerName, // "" : gRPC uses the address's host
		RootCAs:    s.TLS.Roots,
		// verify: false, as a tls step's: the chain is not checked.
		InsecureSkipVerify: !s.TLS.Verify, //nolint:gosec // asked for by the flow
		// Noted: under TLS 1.3 a server refuses a client certificate (or
		// its absence) only after the handshake, and its alert may be lost
		// to a reset.
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			tr.mu.Lock()
			tr.certAsked = true
			tr.mu.Unlock()
			if s.TLS.ClientCert != nil {
				return s.TLS.ClientCert, nil
			}
			return &tls.Certificate{}, nil
		},
	}
}

// tracker follows one attempt's connection from gRPC's goroutines: how far
// it got, its timings, and the errors gRPC turns into strings.
type tracker struct {
	start time.Time

	mu                      sync.Mutex
	dialErr, tlsErr         error
	connected               bool
	tlsStarted, tlsDone     bool
	certAsked               bool            // the server asked for a client certificate
	answered                map[string]bool // by method: the server sent headers or trailers
	connect, tls, firstByte time.Duration
}

func (t *tracker) dial(ctx context.Context, x *runner.Exchange, addr string) (net.Conn, error) {
	t0 := time.Now()
	c, err := x.Dial(ctx, "tcp", addr)
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		if t.dialErr == nil && !t.connected {
			t.dialErr = err
		}
		return nil, err
	}
	if !t.connected {
		t.connected, t.connect = true, time.Since(t0)
	}
	return c, nil
}

// failure classes an attempt without an answer: the errors the dialer and
// the handshake saw first, then the step's deadline; "" when the server
// answered (err is then its status, or nil).
func (t *tracker) failure(ctx context.Context, x *runner.Exchange, err error, method string) (result.Class, string) {
	if err == nil {
		return "", ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	code := status.Code(err)
	late := runner.Phase{Connected: t.connected, TLSStarted: t.tlsStarted, TLSDone: t.tlsDone, Sent: t.connected}
	switch {
	case ctx.Err() != nil && code == codes.Canceled:
		return x.Classify(ctx.Err(), late) // the step's time is up
	case t.answered[method]:
		return "", ""
	case t.dialErr != nil && !t.connected:
		return x.Classify(t.dialErr, runner.Phase{})
	case t.tlsErr != nil:
		return x.Classify(t.tlsErr, runner.Phase{Connected: true, TLSStarted: true})
	case ctx.Err() != nil:
		return x.Classify(ctx.Err(), late)
	case t.certAsked && t.tlsDone:
		return result.TLS, fmt.Sprintf("tls: the server asked for a client certificate, then closed the connection (%s)", short(status.Convert(err).Message()))
	}
	return result.Network, fmt.Sprintf("grpc: no answer (%s: %s)", CodeName(code), short(status.Convert(err).Message()))
}

func (t *tracker) timings(tm *result.Timings) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tm.Connect, tm.TLS, tm.FirstByte = t.connect, t.tls, t.firstByte
}

type methodKey struct{}

// TagRPC implements stats.Handler: it notes which call the events are of.
func (t *tracker) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	return context.WithValue(ctx, methodKey{}, info.FullMethodName)
}

// HandleRPC implements stats.Handler: headers or trailers from the server
// mean the status is the server's, not one gRPC made up for a failed
// connection.
func (t *tracker) HandleRPC(ctx context.Context, s stats.RPCStats) {
	switch s.(type) {
	case *stats.InHeader, *stats.InTrailer:
		m, _ := ctx.Value(methodKey{}).(string)
		t.mu.Lock()
		if !t.answered[m] {
			t.answered[m] = true
			if m != reflectMethod {
				t.firstByte = time.Since(t.start)
			}
		}
		t.mu.Unlock()
	}
}

// TagConn implements stats.Handler.
func (t *tracker) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }

// HandleConn implements stats.Handler.
func (t *tracker) HandleConn(context.Context, stats.ConnStats) {}

// trackTLS is gRPC's TLS with the handshake's time and error kept: gRPC
// would turn the error into a string, and its class would be lost.
type trackTLS struct {
	credentials.TransportCredentials
	tr *tracker
}

func (c *trackTLS) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	t := c.tr
	t.mu.Lock()
	t.tlsStarted = true
	t.mu.Unlock()
	t0 := time.Now()
	nc, info, err := c.TransportCredentials.ClientHandshake(ctx, authority, conn)
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil && t.tlsErr == nil {
		t.tlsErr = err
	}
	if err != nil {
		return nc, info, err
	}
	if !t.tlsDone {
		t.tlsDone, t.tls = true, time.Since(t0)
	}
	return alertConn{nc, t}, info, nil
}

// alertConn keeps an alert the server sends after the handshake: under
// TLS 1.3 a client certificate is refused only then (certificate
// required), and gRPC would turn it into a string.
type alertConn struct {
	net.Conn
	tr *tracker
}

func (c alertConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	var oe *net.OpError
	if err != nil && errors.As(err, &oe) && oe.Op == "remote error" {
		c.tr.mu.Lock()
		if c.tr.tlsErr == nil {
			c.tr.tlsErr = err
		}
		c.tr.mu.Unlock()
	}
	return n, err
}

func (c *trackTLS) Clone() credentials.TransportCredentials {
	return &trackTLS{TransportCredentials: c.TransportCredentials.Clone(), tr: c.tr}
}

// codeNames are the status codes as the gRPC specification spells them
// (codes.Code's String says "Unavailable").
var codeNames = [...]string{
	codes.OK: "OK", codes.Canceled: "CANCELLED", codes.Unknown: "UNKNOWN",
	codes.InvalidArgument: "INVALID_ARGUMENT", codes.DeadlineExceeded: "DEADLINE_EXCEEDED",
	codes.NotFound: "NOT_FOUND", codes.AlreadyExists: "ALREADY_EXISTS",
	codes.PermissionDenied: "PERMISSION_DENIED", codes.ResourceExhausted: "RESOURCE_EXHAUSTED",
	codes.FailedPrecondition: "FAILED_PRECONDITION", codes.Aborted: "ABORTED",
	codes.OutOfRange: "OUT_OF_RANGE", codes.Unimplemented: "UNIMPLEMENTED",
	codes.Internal: "INTERNAL", codes.Unavailable: "UNAVAILABLE", codes.DataLoss: "DATA_LOSS",
	codes.Unauthenticated: "UNAUTHENTICATED",
}

// CodeName is c as the gRPC specification spells it: UNAVAILABLE.
func CodeName(c codes.Code) string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return fmt.Sprintf("CODE_%d", uint32(c))
}

// short cuts a server's message for the result.
func short(s string) string {
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
