// Command bulkhead proves that a Kubernetes cluster keeps its tenants apart,
// by trying: network paths from inside probe pods, API requests as the
// tenants, admission of what tenants must not run. It runs the same checks
// as the e2e suites and writes reports an auditor can file.
//
// Exit codes, one per run verdict: 0 PASS (every selected check passed or
// was waived), 1 FAIL (a check failed: a leak was observed), 2 ERROR
// (bulkhead or a check could not run: bad input, unreachable cluster,
// missing permissions, a CNI that ignores NetworkPolicy, an interrupted
// run, ...), 3 INCOMPLETE (nothing failed, but a selected check was not
// evaluated or not proven).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/bulkhead-k8s/bulkhead/internal/interrupt"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// Exit codes (see reports.RunVerdict.ExitCode).
const (
	exitPass   = reports.ExitPass
	exitCannot = reports.ExitError
)

// exitError carries an exit code with the error that caused it.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// cannot wraps err as "bulkhead could not run".
func cannot(err error) error { return &exitError{code: exitCannot, err: err} }

func main() {
	// Ctrl-C, SIGTERM and SIGHUP alike: the first cancels the run, which
	// then cleans up thoroughly; a second starts the deletion of everything
	// labelled with the run (the undos run registers) and exits; a third
	// exits at once.
	ctx, sig := interrupt.Notify(context.Background(), interrupt.Options{Out: os.Stderr, ExitCode: exitCannot})
	code := execute(ctx, os.Args[1:])
	sig.Stop()
	os.Exit(code)
}

// execute runs the CLI with args and returns the exit code.
func execute(ctx context.Context, args []string) int {
	root := newRootCommand()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitPass
	}
	if ctx.Err() != nil {
		// Whatever failed, it failed because the user interrupted the run;
		// the deferred clean-up has run by now and reported any leftovers.
		fmt.Fprintln(os.Stderr, "bulkhead: interrupted; the run's namespaces and objects were removed (see above for anything left)")
		fmt.Fprintln(os.Stderr, "bulkhead:", err)
		return exitCannot
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.code != reports.ExitFail {
			fmt.Fprintln(os.Stderr, "bulkhead:", ee.err)
		}
		return ee.code
	}
	// Cobra's own errors (unknown flag, bad args) are usage errors.
	fmt.Fprintln(os.Stderr, "bulkhead:", err)
	return exitCannot
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "bulkhead",
		Short: "Prove that a Kubernetes cluster keeps its tenants apart",
		Long: `bulkhead proves tenant isolation by trying it: it places probe pods in tenant
namespaces and tries every network path between them, tries the API server as
each tenant (other tenants' objects, cluster scope, escalation, secrets),
tries to exceed quotas and to admit pods that Pod Security forbids, and checks
that cloud metadata endpoints are out of reach. Every verdict carries its
evidence; reports are written as JSON, JUnit, Markdown, HTML and OSCAL.

Start here:
  bulkhead run --kind                                  # a disposable kind cluster with Cilium
  bulkhead run --context prod --config tenants.yaml    # your cluster, your tenants
  bulkhead report _reports/<run-id>/results.json --format html

Exit codes: 0 PASS, 1 FAIL (a check failed), 2 ERROR (bulkhead or a check could
not run, or the run was interrupted), 3 INCOMPLETE (nothing failed, but a selected
check was not evaluated or not proven).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newRunCommand(), newReportCommand(), newCleanupCommand(), newVersionCommand(), newProbeImageCommand())
	return root
}
