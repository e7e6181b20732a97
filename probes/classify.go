package main

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"

	"github.com/bulkhead-k8s/bulkhead/probes/wire"
)

// unsupportedError says the kernel (or the sandbox around the pod) cannot
// open a socket of the probed protocol at all, as opposed to the probe
// failing on the network.
type unsupportedError struct{ err error }

func (e *unsupportedError) Error() string { return e.err.Error() }
func (e *unsupportedError) Unwrap() error { return e.err }

// classify maps the error of one probe to its Outcome and Detail. A nil
// error is Reachable. The order matters: refusals and unreachables are
// checked before timeouts, and DNS errors before everything because
// *net.DNSError also claims to be a timeout.
func classify(err error) (wire.Outcome, string) {
	var unsupported *unsupportedError
	var dnsErr *net.DNSError
	switch {
	case err == nil:
		return wire.Reachable, ""
	case errors.As(err, &unsupported):
		return wire.Unsupported, err.Error()
	case errors.As(err, &dnsErr):
		return wire.DNSFailure, dnsDetail(dnsErr)
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET):
		// A listener-less host answered with a RST / ICMP port unreachable
		// (or SCTP ABORT): the packet got there.
		return wire.Refused, err.Error()
	case errors.Is(err, syscall.EHOSTUNREACH):
		// ICMP host unreachable or administratively prohibited (some policy
		// engines reject this way): neither a clean refusal nor a silent drop.
		return wire.Unreachable, "host unreachable: " + err.Error()
	case errors.Is(err, syscall.ENETUNREACH):
		return wire.Unreachable, "network unreachable: " + err.Error()
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES):
		// Typically a netfilter rule inside the pod's own network namespace.
		return wire.Unreachable, "not permitted locally: " + err.Error()
	case errors.Is(err, context.Canceled):
		return wire.Failed, "canceled: " + err.Error()
	case isTimeout(err):
		return wire.Timeout, err.Error()
	default:
		return wire.Failed, err.Error()
	}
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, syscall.ETIMEDOUT) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// dnsDetail keeps "the name does not exist" apart from "the resolver did not
// answer": the second is what a policy blocking DNS looks like.
func dnsDetail(err *net.DNSError) string {
	switch {
	case err.IsNotFound:
		return "no such host (NXDOMAIN): " + err.Error()
	case err.IsTimeout:
		return "resolver timeout: " + err.Error()
	default:
		return "resolver error: " + err.Error()
	}
}
