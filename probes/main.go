// Command probe is bulkhead's in-pod probe program. It runs in an empty image
// as a non-root user with a read-only root filesystem: it never writes files
// and needs no capabilities.
//
// Subcommands (the first argument):
//
//	serve    answer on TCP (HTTP), UDP and SCTP with this pod's identity
//	connect  read a wire.ConnectRequest on stdin, probe every target, print a wire.ConnectResponse
//	caps     print wire.Capabilities: what this pod's kernel lets the probe do
//	ready    exit 0 if the local serve mode answers its health check (exec readiness probe)
//	version  print the probe and wire contract versions
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/bulkhead-k8s/bulkhead/probes/wire"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

// env is everything a subcommand may touch in the outside world, so tests can
// run subcommands in-process.
type env struct {
	stdin    io.Reader
	stdout   io.Writer
	stderr   io.Writer
	getenv   func(string) string
	hostname func() (string, error)
}

func osEnv() *env {
	return &env{
		stdin:    os.Stdin,
		stdout:   os.Stdout,
		stderr:   os.Stderr,
		getenv:   os.Getenv,
		hostname: os.Hostname,
	}
}

// command is one subcommand. run returns the process exit code.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e *env, args []string) int
}

// commands is the dispatch table. A new mode is a new file with its run
// function plus one line here. (A function, not a var, to avoid an
// initialisation cycle with usage.)
func commands() []command {
	return []command{
		{"serve", "serve identity on TCP/UDP/SCTP: serve [--tcp ADDR] [--udp ADDR] [--sctp ADDR] [--log-requests] [--token TOKEN]", runServe},
		{"connect", "read a ConnectRequest JSON on stdin, print a ConnectResponse JSON on stdout", runConnect},
		{"caps", "print this pod's Capabilities JSON", runCaps},
		{"ready", "exit 0 if the local serve mode is healthy: ready [--addr HOST:PORT]", runReady},
		{"version", "print the probe and wire contract versions", runVersion},
		{"metadata", "read a MetadataRequest JSON on stdin, try each cloud metadata endpoint, print a MetadataResponse JSON", runMetadata},
		{"decoy", "serve fake, marked cloud metadata (disposable clusters only): decoy --marker RUN [--addr :80]", runDecoy},
		{"api", "read an APIRequest JSON on stdin, call the API server as the pod's ServiceAccount or anonymously, print an APIResponse JSON (never a body)", runAPI},
	}
}

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1 // the subcommand failed (bad input, not ready, cannot listen)
	exitUsage = 2 // unknown subcommand or bad flags
)

func main() {
	// SIGTERM matters: the probe is PID 1 in its container, where the kernel
	// ignores signals that have no handler, and pods get 1 s to stop.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	code := run(ctx, osEnv(), os.Args[1:])
	stop()
	os.Exit(code)
}

func run(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 {
		usage(e.stderr)
		return exitUsage
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, e, args[1:])
		}
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(e.stdout)
		return exitOK
	}
	fmt.Fprintf(e.stderr, "probe: unknown subcommand %q\n", args[0])
	usage(e.stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: probe <subcommand> [flags]")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
}

func runVersion(_ context.Context, e *env, args []string) int {
	if len(args) != 0 {
		fmt.Fprintln(e.stderr, "probe version: takes no arguments")
		return exitUsage
	}
	fmt.Fprintf(e.stdout, "bulkhead-probe version=%s wire=%d go=%s\n", version, wire.Version, runtime.Version())
	return exitOK
}
