package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/bulkhead-k8s/bulkhead/probes/wire"
)

func dialErr(errno error) error {
	return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", errno)}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		want       wire.Outcome
		wantDetail string // substring
	}{
		{"nil", nil, wire.Reachable, ""},
		{"refused", dialErr(syscall.ECONNREFUSED), wire.Refused, "connection refused"},
		{"reset", fmt.Errorf("read: %w", dialErr(syscall.ECONNRESET)), wire.Refused, "reset"},
		{"udp icmp port unreachable", &net.OpError{Op: "read", Net: "udp", Err: os.NewSyscallError("read", syscall.ECONNREFUSED)}, wire.Refused, "refused"},
		{"host unreachable", dialErr(syscall.EHOSTUNREACH), wire.Unreachable, "host unreachable"},
		{"network unreachable", dialErr(syscall.ENETUNREACH), wire.Unreachable, "network unreachable"},
		{"not permitted", dialErr(syscall.EPERM), wire.Unreachable, "not permitted"},
		{"deadline exceeded", &net.OpError{Op: "read", Net: "udp", Err: os.ErrDeadlineExceeded}, wire.Timeout, "i/o timeout"},
		{"context deadline", fmt.Errorf("dial: %w", context.DeadlineExceeded), wire.Timeout, "deadline"},
		{"kernel timeout", dialErr(syscall.ETIMEDOUT), wire.Timeout, "timed out"},
		{"canceled", fmt.Errorf("dial: %w", context.Canceled), wire.Failed, "canceled"},
		{"nxdomain", &net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}, wire.DNSFailure, "no such host (NXDOMAIN)"},
		{"resolver timeout", &net.DNSError{Err: "i/o timeout", Name: "x.example", IsTimeout: true}, wire.DNSFailure, "resolver timeout"},
		{"resolver error", &net.DNSError{Err: "server misbehaving", Name: "x.example"}, wire.DNSFailure, "resolver error"},
		{"unsupported", &unsupportedError{err: fmt.Errorf("socket: %w", syscall.EPROTONOSUPPORT)}, wire.Unsupported, "protocol not supported"},
		{"other", errors.New("something odd"), wire.Failed, "something odd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, detail := classify(tt.err)
			if got != tt.want {
				t.Errorf("classify(%v) = %q, want %q", tt.err, got, tt.want)
			}
			if !strings.Contains(detail, tt.wantDetail) {
				t.Errorf("classify(%v) detail = %q, want it to contain %q", tt.err, detail, tt.wantDetail)
			}
		})
	}
}
