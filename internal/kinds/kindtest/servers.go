package kindtest

import (
	"fmt"
	"net"
	"testing"

	"github.com/miekg/dns"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"
)

// ServeDNSA starts a loopback UDP DNS server that answers A queries for
// name (a fully qualified name, "api.test.") with ip, TTL 60, and
// NXDOMAIN for anything else; it returns the address.
func ServeDNSA(t testing.TB, name, ip string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		if q := req.Question[0]; q.Name == name && q.Qtype == dns.TypeA {
			rr, _ := dns.NewRR(fmt.Sprintf("%s 60 IN A %s", name, ip))
			m.Answer = append(m.Answer, rr)
		} else {
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})}
	started, done := make(chan struct{}), make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { defer close(done); _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown(); <-done })
	return pc.LocalAddr().String()
}

// ServeBanner starts a loopback TCP server that writes banner to each
// connection and closes it, as Redis or SMTP greet; it returns the address.
func ServeBanner(t testing.TB, banner string) string {
	t.Helper()
	return ServeTCP(t, func(c net.Conn) { fmt.Fprint(c, banner) })
}

// ServeGRPCHealth starts a loopback gRPC server with the standard health
// service, service SERVING; the returned server switches its status.
func ServeGRPCHealth(t testing.TB, service string) (string, *health.Server) {
	t.Helper()
	hs := health.NewServer()
	hs.SetServingStatus(service, healthgrpc.HealthCheckResponse_SERVING)
	gs := grpc.NewServer()
	healthgrpc.RegisterHealthServer(gs, hs)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)
	return ln.Addr().String(), hs
}
