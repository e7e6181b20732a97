package main

// SCTP with raw syscalls: the standard library has no SCTP. Sockets are
// one-to-one style (SOCK_STREAM, IPPROTO_SCTP), which behave like TCP
// sockets for socket/bind/listen/accept/connect/read/write.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// sctpAddr is a net.Addr for SCTP endpoints.
type sctpAddr struct{ netip.AddrPort }

func (sctpAddr) Network() string { return "sctp" }

// sctpSocket opens a non-blocking SCTP socket. Errors that mean "this kernel
// or sandbox cannot do SCTP" come back as *unsupportedError.
func sctpSocket(family int) (int, error) {
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_SCTP)
	if err == nil {
		return fd, nil
	}
	err = fmt.Errorf("socket(%s, SOCK_STREAM, IPPROTO_SCTP): %w", familyName(family), err)
	switch {
	case errors.Is(err, unix.EPROTONOSUPPORT), errors.Is(err, unix.ESOCKTNOSUPPORT), errors.Is(err, unix.EAFNOSUPPORT),
		errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		// No sctp module (EPROTONOSUPPORT), no such address family, or
		// seccomp/LSM refusing the socket.
		return -1, &unsupportedError{err: err}
	}
	return -1, err
}

func familyName(family int) string {
	if family == unix.AF_INET6 {
		return "AF_INET6"
	}
	return "AF_INET"
}

// sctpCapability reports whether an SCTP socket can be created here.
func sctpCapability() (bool, string) {
	fd, err := sctpSocket(unix.AF_INET)
	if err != nil {
		return false, err.Error()
	}
	unix.Close(fd)
	return true, ""
}

func sockaddr(ap netip.AddrPort) (int, unix.Sockaddr) {
	ip := ap.Addr().Unmap()
	if ip.Is4() {
		return unix.AF_INET, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ip.As4()}
	}
	return unix.AF_INET6, &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ip.As16()}
}

func sockaddrAddrPort(sa unix.Sockaddr) netip.AddrPort {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(sa.Port))
	}
	return netip.AddrPort{}
}

// sctpListener accepts SCTP associations and answers each with one message.
type sctpListener struct {
	fd   int // listening socket, non-blocking
	wake int // eventfd: close writes it to stop serve
	addr net.Addr

	mu      sync.Mutex
	closed  bool
	serving bool
	done    chan struct{} // closed when serve returns
}

// listenSCTP binds addr ("host:port", host an IP or empty). An empty host
// listens on both IPv6 and IPv4 where the pod has IPv6, else on IPv4.
func listenSCTP(addr string) (*sctpListener, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("sctp listen address %q: %w", addr, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("sctp listen address %q: bad port: %w", addr, err)
	}
	var fd int
	var sa unix.Sockaddr
	if host == "" {
		fd, sa, err = sctpWildcardSocket(uint16(port))
	} else {
		ip, perr := netip.ParseAddr(host)
		if perr != nil {
			return nil, fmt.Errorf("sctp listen address %q: host must be an IP: %w", addr, perr)
		}
		var family int
		family, sa = sockaddr(netip.AddrPortFrom(ip, uint16(port)))
		fd, err = sctpSocket(family)
	}
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()
	// As net.Listen does for TCP: allow rebinding while old associations linger.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return nil, fmt.Errorf("sctp setsockopt SO_REUSEADDR: %w", err)
	}
	if err := unix.Bind(fd, sa); err != nil {
		return nil, fmt.Errorf("sctp bind %s: %w", addr, os.NewSyscallError("bind", err))
	}
	if err := unix.Listen(fd, unix.SOMAXCONN); err != nil {
		return nil, fmt.Errorf("sctp listen %s: %w", addr, os.NewSyscallError("listen", err))
	}
	bound, err := unix.Getsockname(fd)
	if err != nil {
		return nil, fmt.Errorf("sctp getsockname: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("sctp eventfd: %w", err)
	}
	ok = true
	return &sctpListener{fd: fd, wake: wake, addr: sctpAddr{sockaddrAddrPort(bound)}, done: make(chan struct{})}, nil
}

// sctpWildcardSocket prefers a dual-stack IPv6 socket and falls back to IPv4
// when the pod has no IPv6.
func sctpWildcardSocket(port uint16) (int, unix.Sockaddr, error) {
	fd, err := sctpSocket(unix.AF_INET6)
	if err == nil {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0); err == nil {
			return fd, &unix.SockaddrInet6{Port: int(port)}, nil
		}
		unix.Close(fd)
	}
	fd, err4 := sctpSocket(unix.AF_INET)
	if err4 != nil {
		return -1, nil, err4
	}
	return fd, &unix.SockaddrInet4{Port: int(port)}, nil
}

// serve accepts until close. Each association gets answer, then is closed.
func (l *sctpListener) serve(answer []byte, logRequest func(proto, from string)) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.serving = true
	l.mu.Unlock()
	defer close(l.done)

	for {
		fds := []unix.PollFd{{Fd: int32(l.fd), Events: unix.POLLIN}, {Fd: int32(l.wake), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, -1); err != nil {
			if err == unix.EINTR {
				continue
			}
			return fmt.Errorf("sctp poll: %w", err)
		}
		if fds[1].Revents != 0 {
			return nil
		}
		if fds[0].Revents&(unix.POLLERR|unix.POLLNVAL) != 0 {
			return fmt.Errorf("sctp listener: poll revents %#x", fds[0].Revents)
		}
		nfd, sa, err := unix.Accept4(l.fd, unix.SOCK_CLOEXEC)
		switch {
		case err == nil:
		case err == unix.EAGAIN, err == unix.EINTR, err == unix.ECONNABORTED:
			continue
		case err == unix.EMFILE, err == unix.ENFILE, err == unix.ENOBUFS, err == unix.ENOMEM:
			time.Sleep(50 * time.Millisecond) // resource pressure: back off, as net/http does
			continue
		default:
			return fmt.Errorf("sctp accept: %w", err)
		}
		// The accepted socket is blocking; bound the write so a stuck peer
		// cannot stall the accept loop.
		tv := unix.NsecToTimeval(int64(time.Second))
		unix.SetsockoptTimeval(nfd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
		writeAll(nfd, answer)
		unix.Close(nfd)
		logRequest("sctp", sockaddrAddrPort(sa).String())
	}
}

func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// close stops serve (waiting for it) and releases the sockets.
func (l *sctpListener) close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	serving := l.serving
	l.mu.Unlock()
	if serving {
		var one [8]byte
		one[0] = 1 // eventfd counters are host-endian uint64; any non-zero wakes poll
		unix.Write(l.wake, one[:])
		<-l.done
	}
	unix.Close(l.fd)
	unix.Close(l.wake)
}

// sctpExchange opens an association to ap and reads what the server writes
// until it closes. err is the connection's error (nil once associated);
// readErr is why reading the answer stopped early, if it did.
func sctpExchange(ctx context.Context, ap netip.AddrPort) (answer []byte, readErr, err error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return nil, nil, errors.New("sctp: no deadline") // connect always sets one
	}
	family, sa := sockaddr(ap)
	fd, err := sctpSocket(family)
	if err != nil {
		return nil, nil, err
	}
	defer unix.Close(fd)
	opErr := func(op string, err error) error {
		return &net.OpError{Op: "dial", Net: "sctp", Addr: sctpAddr{ap}, Err: os.NewSyscallError(op, err)}
	}

	// Non-blocking connect, then wait for writability (or error) until the
	// deadline, as net.Dialer does for TCP.
	if err := unix.Connect(fd, sa); err != nil && err != unix.EINPROGRESS && err != unix.EINTR {
		return nil, nil, opErr("connect", err)
	} else if err != nil {
		if _, err := waitFD(fd, unix.POLLOUT, deadline); err != nil {
			return nil, nil, &net.OpError{Op: "dial", Net: "sctp", Addr: sctpAddr{ap}, Err: err}
		}
		soErr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil {
			return nil, nil, opErr("getsockopt", err)
		}
		if soErr != 0 {
			return nil, nil, opErr("connect", unix.Errno(soErr))
		}
		if _, err := unix.Getpeername(fd); err != nil {
			return nil, nil, opErr("connect", err)
		}
	}

	var buf []byte
	chunk := make([]byte, 4096)
	for len(buf) < maxAnswer {
		n, err := unix.Read(fd, chunk)
		switch {
		case err == unix.EINTR:
		case err == unix.EAGAIN:
			if _, err := waitFD(fd, unix.POLLIN, deadline); err != nil {
				return buf, fmt.Errorf("read answer: %w", err), nil
			}
		case err != nil:
			return buf, fmt.Errorf("read answer: %w", os.NewSyscallError("read", err)), nil
		case n == 0:
			return buf, nil, nil // the server closed: the answer is complete
		default:
			buf = append(buf, chunk[:n]...)
		}
	}
	return buf, nil, nil
}

// waitFD polls fd for events until deadline; it returns os.ErrDeadlineExceeded
// on timeout. poll is retried on EINTR, which the Go runtime's preemption
// signals cause routinely.
func waitFD(fd int, events int16, deadline time.Time) (int16, error) {
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return 0, os.ErrDeadlineExceeded
		}
		ms := int((left + time.Millisecond - 1) / time.Millisecond) // round up: never spin on 0
		fds := []unix.PollFd{{Fd: int32(fd), Events: events}}
		n, err := unix.Poll(fds, ms)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, os.NewSyscallError("poll", err)
		}
		if n > 0 {
			return fds[0].Revents, nil
		}
	}
}
