package runner

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"
)

// keepAlive reports SO_KEEPALIVE of a connection made by d.
func keepAlive(t *testing.T, d *net.Dialer, addr string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("dialing %s: %v", addr, err)
	}
	defer c.Close()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	v, gerr := -1, error(nil)
	if err := rc.Control(func(fd uintptr) { v, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE) }); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatalf("reading SO_KEEPALIVE: %v", gerr)
	}
	return v
}

// A run's connections carry no TCP keep-alive: they live for one run, and
// setting it up costs setsockopt calls a connection. Go's default dialer
// turns it on, which the first case shows (so the second can fail).
func TestProbeDialerNoKeepAlive(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if v := keepAlive(t, &net.Dialer{}, ln.Addr().String()); v == 0 {
		t.Fatalf("Go's default dialer: SO_KEEPALIVE %d, want it on (the premise of this test)", v)
	}
	if v := keepAlive(t, probeDialer(), ln.Addr().String()); v != 0 {
		t.Errorf("probeDialer: SO_KEEPALIVE %d, want 0", v)
	}
}
