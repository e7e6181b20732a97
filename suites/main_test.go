// Package suites is bulkhead's conformance suite for `go test`: one
// TestMain, one cluster, a file per area. Each check is an e2e-framework
// feature labelled with its area and check ID; negative controls (tests that
// inject a leak and expect the check to fail) are labelled
// type=negative-control.
//
// Without --kubeconfig/--context it creates a disposable kind cluster with
// Cilium, runs everything, writes reports and deletes the cluster:
//
//	go test ./suites/ -timeout 60m
//
// Against an existing cluster (only bulkhead's own namespaces are created):
//
//	go test ./suites/ -timeout 60m -args --kubeconfig=PATH --context=NAME --probe-image=REF
package suites

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"

	"sigs.k8s.io/e2e-framework/pkg/env"
	"sigs.k8s.io/e2e-framework/pkg/envconf"

	"github.com/bulkhead-k8s/bulkhead/internal/interrupt"
)

var (
	testenv env.Environment
	h       *harness
)

func TestMain(m *testing.M) {
	h = newHarness()
	// The flags `bulkhead run` takes too, registered by the same function.
	h.target.RegisterFlags(flag.CommandLine, &h.timing)
	cfg, err := envconf.NewFromFlags()
	if err != nil {
		fmt.Fprintf(os.Stderr, "bulkhead suites: %v\n", err)
		os.Exit(2)
	}
	// Ctrl-C, SIGTERM and SIGHUP alike, as in the CLI (internal/interrupt).
	ctx, sig := interrupt.Notify(context.Background(), interrupt.Options{Out: os.Stderr, ExitCode: 130, AfterFirst: h.afterInterrupt})
	testenv, err = env.NewWithContext(ctx, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bulkhead suites: %v\n", err)
		os.Exit(2)
	}
	h.target.Kubeconfig, h.target.Context = cfg.KubeconfigFile(), cfg.KubeContext()
	testenv.Setup(h.prepare, h.startSession)
	testenv.Finish(h.finish)
	code := testenv.Run(m)
	sig.Stop()
	if code == 0 && h.finishErr != nil {
		fmt.Fprintf(os.Stderr, "bulkhead suites: %v\n", h.finishErr)
		code = 1
	}
	os.Exit(code)
}
