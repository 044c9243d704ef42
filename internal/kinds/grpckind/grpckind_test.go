package grpckind_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/prober-dev/prober/internal/kinds/grpckind"
	"github.com/prober-dev/prober/internal/kinds/kindtest"
	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/runner"
)

// server is a loopback gRPC server with the standard health service; it
// keeps the metadata of the calls it got.
type server struct {
	addr   string
	health *health.Server
	mu     sync.Mutex
	seen   []metadata.MD
}

func (s *server) calls() []metadata.MD {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]metadata.MD(nil), s.seen...)
}

// serve starts a gRPC server (TLS with cert when given; with server
// reflection if asked) whose health
// service has shop SERVING and down NOT_SERVING. A call with metadata
// echo is denied with the authorization it carried, as careless servers do.
func serve(t *testing.T, cert *tls.Certificate, impl healthgrpc.HealthServer, reflect bool) *server {
	t.Helper()
	s := &server{health: health.NewServer()}
	s.health.SetServingStatus("shop", healthgrpc.HealthCheckResponse_SERVING)
	s.health.SetServingStatus("down", healthgrpc.HealthCheckResponse_NOT_SERVING)
	opts := []grpc.ServerOption{grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		s.mu.Lock()
		s.seen = append(s.seen, md)
		s.mu.Unlock()
		if len(md.Get("echo")) > 0 {
			return nil, status.Errorf(codes.PermissionDenied, "token %s is not allowed", strings.Join(md.Get("authorization"), ","))
		}
		return h(ctx, req)
	})}
	if cert != nil {
		opts = append(opts, grpc.Creds(credentials.NewServerTLSFromCert(cert)))
	}
	srv := grpc.NewServer(opts...)
	if impl == nil {
		impl = s.health
	}
	healthgrpc.RegisterHealthServer(srv, impl)
	if reflect {
		reflection.Register(srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	s.addr = ln.Addr().String()
	return s
}

// hanging is a health service whose Check never answers.
type hanging struct {
	healthgrpc.UnimplementedHealthServer
}

func (hanging) Check(ctx context.Context, _ *healthgrpc.HealthCheckRequest) (*healthgrpc.HealthCheckResponse, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func flow(timeout, block, extra string) string {
	return "name: f\nsteps:\n  - name: health\n    timeout: " + timeout + "\n    grpc: " + block + "\n" + extra
}

func TestGRPCKind(t *testing.T) {
	dir := t.TempDir()
	ca, other := kindtest.NewCA(t), kindtest.NewCA(t)
	for name, data := range map[string][]byte{"ca.pem": ca.PEM, "other.pem": other.PEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	leaf := ca.Leaf(t, "grpc", time.Now().Add(24*time.Hour), "127.0.0.1", "grpc.test")
	plain := serve(t, nil, nil, true)
	secure := serve(t, &leaf, nil, false)
	hung := serve(t, nil, hanging{}, false)
	// Accepts connections and never says a word (not even HTTP/2's preface).
	quiet := kindtest.ServeTCP(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	closed := kindtest.ClosedAddr(t)
	// Not gRPC at all: an HTTP/1.1 server answers the preface with 400.
	web := kindtest.ServeTCP(t, func(c net.Conn) {
		_, _ = c.Read(make([]byte, 64))
		_, _ = io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
	})

	before := runtime.NumGoroutine()
	defer kindtest.WaitGoroutines(t, before)
	for _, tc := range []struct {
		name, timeout, block, extra string
		class                       result.Class
		msg                         string            // in the first failure
		attrs                       map[string]string // exactly
	}{
		{"serving", "5s", `{address: "` + plain.addr + `", service: shop}`, "", result.OK, "",
			map[string]string{"grpc.status": "OK", "grpc.message": "", "serving": "SERVING"}},
		{"the whole server", "5s", `{address: "` + plain.addr + `"}`, `    expect: ['serving == "SERVING"', 'grpc.status == "OK"', duration < 5s]` + "\n", result.OK, "", nil},
		{"not serving", "5s", `{address: "` + plain.addr + `", service: down}`, "", result.Assertion,
			"serving NOT_SERVING (grpc.status OK); without an expectation on grpc.status, grpc.message or serving, only OK and SERVING pass",
			map[string]string{"grpc.status": "OK", "serving": "NOT_SERVING"}},
		{"not serving, expected", "5s", `{address: "` + plain.addr + `", service: down}`, `    expect: 'serving == "NOT_SERVING"'` + "\n", result.OK, "", nil},
		{"not serving, until", "5s", `{address: "` + plain.addr + `", service: down}`, "    until: {expect: 'serving == \"SERVING\"', within: 300ms, interval: 100ms}\n",
			result.Timeout, `until serving == "SERVING": got "NOT_SERVING"`, nil},
		{"duration only", "5s", `{address: "` + plain.addr + `", service: down}`, "    expect: duration < 5s\n", result.Assertion, "serving NOT_SERVING", nil},
		{"unknown service", "5s", `{address: "` + plain.addr + `", service: nope}`, "", result.Assertion,
			`grpc.status NOT_FOUND "unknown service" (serving SERVICE_UNKNOWN)`,
			map[string]string{"grpc.status": "NOT_FOUND", "grpc.message": "unknown service", "serving": "SERVICE_UNKNOWN"}},
		{"unknown service, expected", "5s", `{address: "` + plain.addr + `", service: nope}`, `    expect: ['grpc.status == "NOT_FOUND"', 'serving == "SERVICE_UNKNOWN"']` + "\n", result.OK, "", nil},
		{"a failed expectation", "5s", `{address: "` + plain.addr + `", service: shop}`, `    expect: 'serving == "NOT_SERVING"'` + "\n", result.Assertion, `serving == "NOT_SERVING": got "SERVING"`, nil},
		{"nothing listening", "5s", `{address: "` + closed + `"}`, "", result.ConnectRefused, "connection refused", nil},
		{"not gRPC", "5s", `{address: "` + web + `"}`, "", result.Network, "grpc: no answer (UNAVAILABLE: ", nil},
		{"never answers", "300ms", `{address: "` + quiet + `"}`, "", result.Timeout, "no reply within the step timeout (300ms)", nil},
		{"the check hangs", "300ms", `{address: "` + hung.addr + `"}`, "", result.Timeout, "no reply within the step timeout (300ms)", nil},
		{"tls", "5s", `{address: "` + secure.addr + `", service: shop, tls: {ca_file: ca.pem}}`, "", result.OK, "", map[string]string{"serving": "SERVING"}},
		{"tls, server name", "5s", `{address: "` + secure.addr + `", tls: {ca_file: ca.pem, server_name: grpc.test}}`, "", result.OK, "", nil},
		{"tls, wrong name", "5s", `{address: "` + secure.addr + `", tls: {ca_file: ca.pem, server_name: other.test}}`, "", result.TLS, "certificate is valid for grpc.test, not other.test", nil},
		{"tls, wrong CA", "5s", `{address: "` + secure.addr + `", tls: {ca_file: other.pem}}`, "", result.TLS, "unknown authority", nil},
		{"tls, system roots", "5s", `{address: "` + secure.addr + `", tls: true}`, "", result.TLS, "unknown authority", nil},
		{"tls, unverified", "5s", `{address: "` + secure.addr + `", tls: {verify: false}}`, "", result.OK, "", nil},
		{"tls to a plaintext server", "5s", `{address: "` + plain.addr + `", tls: {ca_file: ca.pem}}`, "", result.TLS, "", nil},
		{"the health answer as JSON", "5s", `{address: "` + plain.addr + `", service: shop}`, `    expect: 'json.status == "SERVING"'` + "\n", result.OK, "", nil},
		{"a method", "5s", `{address: "` + plain.addr + `", method: grpc.health.v1.Health/Check, request: '{"service": "{{svc}}"}'}`,
			`    expect: ['json.status == "NOT_SERVING"', 'grpc.status == "OK"', 'body == "{\"status\":\"NOT_SERVING\"}"']` + "\n", result.OK, "",
			map[string]string{"grpc.status": "OK", "serving": ""}},
		{"a method's error status", "5s", `{address: "` + plain.addr + `", method: /grpc.health.v1.Health/Check, request: '{"service": "nope"}'}`, "", result.Assertion,
			`grpc.status NOT_FOUND "unknown service"; without an expectation on grpc.status, grpc.message or serving, only OK passes`, nil},
		{"a method's error status, expected", "5s", `{address: "` + plain.addr + `", method: grpc.health.v1.Health/Check, request: '{"service": "nope"}'}`,
			`    expect: 'grpc.status == "NOT_FOUND"'` + "\n", result.OK, "", nil},
		{"no such method", "5s", `{address: "` + plain.addr + `", method: grpc.health.v1.Health/Nope}`, "", result.Request,
			"grpc: server reflection: service grpc.health.v1.Health has no method Nope", nil},
		{"no such service", "5s", `{address: "` + plain.addr + `", method: shop.Orders/Get}`, "", result.Request, "grpc: server reflection: shop.Orders: ", nil},
		{"a streaming method", "5s", `{address: "` + plain.addr + `", method: grpc.health.v1.Health/Watch}`, "", result.Request, "streams: only unary calls are supported", nil},
		{"a request of the wrong shape", "5s", `{address: "` + plain.addr + `", method: grpc.health.v1.Health/Check, request: '{"servise": "{{secret:S}}"}'}`, "", result.Request,
			`grpc: request: proto: (line 1:2): unknown field "servise"`, nil},
		{"no reflection", "5s", `{address: "` + hung.addr + `", method: grpc.health.v1.Health/Check}`, "", result.Request,
			"grpc: server reflection (needed for method:): UNIMPLEMENTED", nil},
		{"a method, nothing listening", "5s", `{address: "` + closed + `", method: grpc.health.v1.Health/Check}`, "", result.ConnectRefused, "connection refused", nil},
		{"a secret echoed", "5s", `{address: "` + plain.addr + `", metadata: {authorization: "Bearer {{secret:S}}", echo: "1"}}`, "", result.Assertion,
			`grpc.status PERMISSION_DENIED "token Bearer [secret:S] is not allowed"`, map[string]string{"grpc.message": "token Bearer [secret:S] is not allowed"}},
		{"a secret echoed, expected", "5s", `{address: "` + plain.addr + `", metadata: {authorization: "Bearer {{secret:S}}", echo: "1"}}`, "    expect: 'grpc.message == \"\"'\n", result.Assertion,
			`grpc.message == "": got "token Bearer [secret:S] is not allowed"`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := kindtest.Run(t, dir, flow(tc.timeout, tc.block, tc.extra)+"vars: {svc: down}\n", grpckind.Kind{})
			s := r.Steps[0]
			if s.Class != tc.class {
				t.Fatalf("class %s, want %s (%v)", s.Class, tc.class, s.Failures)
			}
			if tc.msg != "" && !strings.Contains(s.Message(), tc.msg) {
				t.Errorf("message %q, want it to contain %q", s.Message(), tc.msg)
			}
			if s.Kind != "grpc" || s.Method != "GRPC" || !strings.HasPrefix(s.URL, "grpc://") && !strings.HasPrefix(s.URL, "grpcs://") {
				t.Errorf("kind %q method %q url %q", s.Kind, s.Method, s.URL)
			}
			for k, v := range tc.attrs {
				if got := s.Attr(k); got != v {
					t.Errorf("attr %s = %q, want %q", k, got, v)
				}
			}
			for _, a := range s.Attrs {
				if strings.Contains(a.Value, "s3cr3t") {
					t.Errorf("attr %s leaks the secret: %q", a.Name, a.Value)
				}
			}
			for _, f := range s.Failures {
				if strings.Contains(f.Message+f.Actual, "s3cr3t") {
					t.Errorf("failure leaks the secret: %+v", f)
				}
			}
			if strings.Contains(s.URL, "s3cr3t") {
				t.Errorf("url leaks the secret: %q", s.URL)
			}
			if tc.class == result.OK {
				if s.Timings.Connect <= 0 || s.Timings.FirstByte <= 0 {
					t.Errorf("no connect or first-byte timing: %+v", s.Timings)
				}
				if strings.Contains(tc.block, "tls:") != (s.Timings.TLS > 0) {
					t.Errorf("TLS timing %v for %s", s.Timings.TLS, tc.block)
				}
			}
		})
	}
}

// TestGRPCKindClientCert: mutual TLS with the tls block's client_cert and
// client_key (a file, or a {{secret:NAME}}); without them the server
// refuses the handshake.
func TestGRPCKindClientCert(t *testing.T) {
	dir := t.TempDir()
	ca := kindtest.NewCA(t)
	cert, key := kindtest.PEM(t, ca.Leaf(t, "prober", time.Now().Add(time.Hour), "prober.test"))
	for name, data := range map[string][]byte{"ca.pem": ca.PEM, "client.pem": cert, "client-key.pem": key, "CLIENT_KEY.secret": key} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{ca.Leaf(t, "grpc", time.Now().Add(time.Hour), "127.0.0.1")},
		ClientCAs:    pool, ClientAuth: tls.RequireAndVerifyClientCert,
	})))
	healthgrpc.RegisterHealthServer(srv, health.NewServer())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()
	for _, tc := range []struct {
		tls, msg string
		class    result.Class
	}{
		{"{ca_file: ca.pem, client_cert: client.pem, client_key: client-key.pem}", "", result.OK},
		{`{ca_file: ca.pem, client_cert: client.pem, client_key: "{{secret:CLIENT_KEY}}"}`, "", result.OK},
		// TLS 1.3: the server's alert comes after the client's handshake,
		// and may be lost to a reset.
		{"{ca_file: ca.pem}", "tls: ", result.TLS},
	} {
		r := kindtest.Run(t, dir, flow("5s", `{address: "`+ln.Addr().String()+`", tls: `+tc.tls+`}`, ""), grpckind.Kind{})
		if s := r.Steps[0]; s.Class != tc.class || !strings.Contains(s.Message(), tc.msg) {
			t.Errorf("tls %s: class %s (%s), want %s (%s)", tc.tls, s.Class, s.Message(), tc.class, tc.msg)
		}
	}
}

// TestGRPCKindConnectTimeout: a connection that never comes (a black
// hole) is connect_timeout, the dial made through the runner's dialer.
func TestGRPCKindConnectTimeout(t *testing.T) {
	dialed := make(chan string, 4)
	hole := func(ctx context.Context, _, addr string) (net.Conn, error) {
		dialed <- addr
		<-ctx.Done()
		return nil, ctx.Err()
	}
	for _, block := range []string{`{address: "192.0.2.1:50051"}`, `{address: "192.0.2.1:50051", method: a.B/C}`} {
		r := kindtest.RunWith(t, "", flow("300ms", block, ""), runner.Options{DialContext: hole}, grpckind.Kind{})
		s := r.Steps[0]
		if s.Class != result.ConnectTimeout || !strings.Contains(s.Message(), "no connection within the step timeout (300ms)") {
			t.Errorf("%s: class %s message %q", block, s.Class, s.Message())
		}
		if got := <-dialed; got != "192.0.2.1:50051" {
			t.Errorf("dialed %q", got)
		}
	}
}

// TestGRPCKindMetadata: the call carries the step's traceparent, the
// synthetic markers and the flow's metadata, variables and secrets
// expanded.
func TestGRPCKindMetadata(t *testing.T) {
	srv := serve(t, nil, nil, true)
	r := kindtest.Run(t, "", "name: f\nvars: {tenant: acme}\nsteps:\n  - name: health\n    grpc:\n      address: \""+srv.addr+"\"\n      service: shop\n"+
		"      metadata: {X-Tenant: \"{{tenant}}\", authorization: \"Bearer {{secret:S}}\", x-multi: [a, b]}\n", grpckind.Kind{})
	if !r.OK() {
		t.Fatalf("%s", r.Summary())
	}
	calls := srv.calls()
	if len(calls) != 1 {
		t.Fatalf("%d calls", len(calls))
	}
	md, s := calls[0], r.Steps[0]
	for k, want := range map[string]string{
		"traceparent":        "00-" + r.TraceID + "-" + s.SpanID + "-01",
		"tracestate":         "prober=synthetic",
		"x-prober-synthetic": "true",
		"x-tenant":           "acme",
		"authorization":      "Bearer s3cr3t-value",
		"x-multi":            "a,b",
	} {
		if got := strings.Join(md.Get(k), ","); got != want {
			t.Errorf("metadata %s = %q, want %q", k, got, want)
		}
	}
	if len(r.TraceID) != 32 || len(s.SpanID) != 16 {
		t.Errorf("trace %q span %q", r.TraceID, s.SpanID)
	}
}

func TestGRPCKindConfig(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), kindtest.NewCA(t).PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	f := func(block, extra string) string { return flow("1s", block, extra) }
	for _, tc := range []struct{ flow, want string }{
		{f(`{service: x}`, ""), "f.yaml:5:11: grpc needs an address"},
		{f(`{address: "a"}`, ""), `f.yaml:5:21: address "a" is not host:port`},
		{f(`{address: "a:1", servise: x}`, ""), `f.yaml:5:28: unknown field "servise" in grpc`},
		{f(`{address: "a:1", tls: {ca: x}}`, ""), `f.yaml:5:34: unknown field "ca" in tls`},
		{f(`{address: "a:1", tls: 5}`, ""), `f.yaml:5:33: expected true or false`},
		{f(`{address: "a:1", tls: {ca_file: nope.pem}}`, ""), `f.yaml:5:43: ca_file: `},
		{f(`{address: "a:1", tls: {client_cert: ca.pem}}`, ""), `f.yaml:5:33: client_cert and client_key go together`},
		{f(`{address: "a:1", metadata: {traceparent: x}}`, ""), `f.yaml:5:39: metadata traceparent is set by the prober`},
		{f(`{address: "a:1", metadata: {X-Prober-Synthetic: x}}`, ""), `f.yaml:5:39: metadata x-prober-synthetic is set by the prober`},
		{f(`{address: "a:1", metadata: {a: x, grpc-timeout: 1s}}`, ""), `f.yaml:5:45: metadata grpc-timeout: names starting grpc- are gRPC's own`},
		{f(`{address: "a:1", metadata: {"a b": x}}`, ""), `f.yaml:5:39: metadata name "a b": only letters`},
		{f(`{address: "a:1", metadata: [x]}`, ""), `f.yaml:5:38: expected a mapping of metadata`},
		{f(`{address: "a:1", metadata: {a: "{{nope}}"}}`, ""), `undefined variable "nope"`},
		{f(`{address: "a:1"}`, "    expect: status == 200\n"), "f.yaml:6:13: grpc steps cannot read that: their operands are duration, body, json.<path>, grpc.message, grpc.status, serving"},
		{f(`{address: "a:1"}`, "    expect: serving == 1\n"), "f.yaml:6:"},
		{f(`{address: "a:1", method: Check}`, ""), `f.yaml:5:36: method "Check" is not package.Service/Method`},
		{f(`{address: "a:1", method: a.B/C/D}`, ""), `f.yaml:5:36: method "a.B/C/D" is not package.Service/Method`},
		{f(`{address: "a:1", method: a.B/C, service: x}`, ""), `f.yaml:5:52: service is the health check's`},
		{f(`{address: "a:1", request: "{}"}`, ""), `f.yaml:5:37: request needs a method`},
		{f(`{address: "a:1", method: a.B/C, request: "{x"}`, ""), `f.yaml:5:52: request is not JSON`},
		{f(`{address: "a:1", method: a.B/C, request: "{\"a\": \"{{nope}}\"}"}`, ""), `undefined variable "nope"`},
	} {
		_, err := kindtest.Load(t, dir, tc.flow, grpckind.Kind{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("flow:\n%s\nerr %v\nwant %q", tc.flow, err, tc.want)
		}
	}
}

func TestCodeName(t *testing.T) {
	for c, want := range map[codes.Code]string{codes.OK: "OK", codes.Canceled: "CANCELLED", codes.Unavailable: "UNAVAILABLE",
		codes.Unauthenticated: "UNAUTHENTICATED", codes.DeadlineExceeded: "DEADLINE_EXCEEDED", 99: "CODE_99"} {
		if got := grpckind.CodeName(c); got != want {
			t.Errorf("%d: %q, want %q", c, got, want)
		}
	}
}
