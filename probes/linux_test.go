//go:build linux

package main

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bulkhead-k8s/bulkhead/probes/wire"
)

// TestConnectTCPTimeout makes a loopback TCP listener drop SYNs, as a policy
// drop would: with a backlog of 0 and its accept queue full, Linux discards
// new SYNs, so the dial can only time out.
func TestConnectTCPTimeout(t *testing.T) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := sockaddrAddrPort(sa)

	// Fill the accept queue (never accepted) until a dial times out.
	full := false
	for range 8 {
		c, err := net.DialTimeout("tcp", addr.String(), 200*time.Millisecond)
		if err != nil {
			if !isTimeout(err) {
				t.Fatalf("filling the accept queue: %v", err)
			}
			full = true
			break
		}
		defer c.Close()
	}
	if !full {
		t.Skip("could not make the kernel drop SYNs on loopback; TCP timeout classification is covered by TestClassify")
	}

	r := connectOne(t, wire.ConnectTarget{ID: "drop", Protocol: wire.TCP, Host: "127.0.0.1", Port: int(addr.Port()), TimeoutMS: 500})
	if r.Outcome != wire.Timeout {
		t.Fatalf("outcome = %q (%s), want timeout", r.Outcome, r.Detail)
	}
	if r.LatencyMS < 500 || r.LatencyMS > 1000 {
		t.Errorf("latency %.1f ms, want about 500", r.LatencyMS)
	}
}

// TestWaitFD exercises the poll helper the SCTP client relies on, with a pipe
// (SCTP itself may be missing from the test kernel).
func TestWaitFD(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])

	start := time.Now()
	_, err := waitFD(p[0], unix.POLLIN, start.Add(150*time.Millisecond))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("idle pipe: err = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 650*time.Millisecond {
		t.Errorf("idle pipe: waited %v, want about 150ms", d)
	}
	if _, err := waitFD(p[0], unix.POLLIN, time.Now().Add(-time.Second)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("past deadline: err = %v", err)
	}

	unix.Write(p[1], []byte("x"))
	revents, err := waitFD(p[0], unix.POLLIN, time.Now().Add(time.Second))
	if err != nil || revents&unix.POLLIN == 0 {
		t.Errorf("readable pipe: revents %#x err %v", revents, err)
	}
}

func TestSockaddrRoundTrip(t *testing.T) {
	for _, s := range []string{"10.1.2.3:8082", "[fd00::1]:8082", "[::ffff:10.1.2.3]:9"} {
		ap := netip.MustParseAddrPort(s)
		family, sa := sockaddr(ap)
		got := sockaddrAddrPort(sa)
		want := netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		if got != want {
			t.Errorf("%s: round trip gave %s, want %s", s, got, want)
		}
		wantFamily := unix.AF_INET6
		if want.Addr().Is4() {
			wantFamily = unix.AF_INET
		}
		if family != wantFamily {
			t.Errorf("%s: family %d, want %d", s, family, wantFamily)
		}
	}
}

func TestListenSCTP(t *testing.T) {
	supported, _ := sctpCapability()
	l, err := listenSCTP("127.0.0.1:0")
	if !supported {
		var unsupported *unsupportedError
		if !errors.As(err, &unsupported) {
			t.Errorf("listenSCTP on a kernel without SCTP: err = %v, want *unsupportedError", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("listenSCTP: %v", err)
	}
	if l.addr.(sctpAddr).Port() == 0 {
		t.Errorf("bound to port 0")
	}
	go l.serve([]byte(`{"pod":"x"}`), func(string, string) {})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	answer, readErr, err := sctpExchange(ctx, l.addr.(sctpAddr).AddrPort)
	if err != nil || readErr != nil || string(answer) != `{"pod":"x"}` {
		t.Errorf("exchange: answer %q readErr %v err %v", answer, readErr, err)
	}
	l.close()
}

func TestListenSCTPBadAddress(t *testing.T) {
	for _, a := range []string{"nohostport", "localhost:8082", "127.0.0.1:http", "127.0.0.1:70000"} {
		if _, err := listenSCTP(a); err == nil {
			t.Errorf("listenSCTP(%q) succeeded", a)
		}
	}
}
