//go:build !linux

package main

import (
	"context"
	"errors"
	"net"
	"net/netip"
)

// SCTP is implemented for Linux only (the probe runs in Linux pods); this
// keeps the package building elsewhere for development.

var errSCTPNotLinux = &unsupportedError{err: errors.New("sctp: probe supports SCTP on Linux only")}

type sctpListener struct{ addr net.Addr }

func listenSCTP(string) (*sctpListener, error)                   { return nil, errSCTPNotLinux }
func (l *sctpListener) serve([]byte, func(string, string)) error { return nil }
func (l *sctpListener) close()                                   {}

func sctpCapability() (bool, string) { return false, errSCTPNotLinux.Error() }

func sctpExchange(context.Context, netip.AddrPort) ([]byte, error, error) {
	return nil, nil, errSCTPNotLinux
}
