package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/bulkhead-k8s/bulkhead"
	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/all"
	"github.com/bulkhead-k8s/bulkhead/internal/config"
	"github.com/bulkhead-k8s/bulkhead/internal/interrupt"
	"github.com/bulkhead-k8s/bulkhead/internal/kube"
	"github.com/bulkhead-k8s/bulkhead/internal/preflight"
	"github.com/bulkhead-k8s/bulkhead/internal/session"
	"github.com/bulkhead-k8s/bulkhead/internal/target"
	"github.com/bulkhead-k8s/bulkhead/internal/target/decoy"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// EnvYes confirms touching a cluster bulkhead did not create, like --yes.
const EnvYes = "BULKHEAD_YES"

type runOptions struct {
	target     target.Config
	timing     checks.Timing
	configFile string
	areas      []string
	profile    string
	labels     string
	skipLabels string
	reportOpts reportOptions
	yes        bool
	verbose    bool
	quiet      bool
	dryRun     bool
	runID      string
	allow      checks.Allowances
}

func newRunCommand() *cobra.Command {
	o := &runOptions{target: target.FromEnv(os.Getenv), timing: checks.DefaultTiming()}
	o.yes, _ = strconv.ParseBool(os.Getenv(EnvYes))
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the isolation checks against a cluster and write reports",
		Long:  runHelp + "\n" + footprintText(all.Registry().All()) + runHelpEnd,
		Example: `  bulkhead run --kind
  bulkhead run --context staging --config tenants.yaml --dry-run
  bulkhead run --context staging --config tenants.yaml --probe-image registry.example.com/bulkhead/probe:v0.1.0 --yes
  bulkhead run --kind --areas network,rbac --profile quick
  bulkhead run --context prod --config tenants.yaml --labels mtb=MTB-PL1-BC-NI-1 --waivers waivers.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), cmd.InOrStdin())
		},
	}
	f := cmd.Flags()
	t := &o.target
	f.StringVar(&t.Kubeconfig, "kubeconfig", "", "kubeconfig of an existing cluster (default: $KUBECONFIG or ~/.kube/config when --context is given)")
	f.StringVar(&t.Context, "context", "", "kubeconfig context of an existing cluster")
	f.BoolVar(&t.Kind, "kind", false, "create a disposable kind cluster with Cilium for this run")
	// The flags the e2e suites take too, registered once for both.
	shared := flag.NewFlagSet("bulkhead", flag.ContinueOnError)
	t.RegisterFlags(shared, &o.timing)
	f.AddGoFlagSet(shared)
	f.StringVar(&o.configFile, "config", "", "tenant config file (bring your own tenants); schema above")
	f.StringSliceVar(&o.areas, "areas", nil, "only these areas (network, metadata, quota, rbac, secrets, podsecurity, exposure)")
	f.StringVar(&o.profile, "profile", checks.ProfileFull, "quick (leave out slow checks) or full")
	f.StringVar(&o.labels, "labels", "", "only checks with these labels, e.g. area=network,mtb=MTB-PL1-BC-NI-1")
	f.StringVar(&o.skipLabels, "skip-labels", "", "leave out checks with these labels, e.g. check=QUOTA-001")
	f.StringVar(&o.runID, "run-id", "", "run ID (default: random); names the run's namespaces and report directory")
	f.BoolVar(&o.dryRun, "dry-run", false, "print what the run would create in which namespace, for how long and what turns it off, reading the cluster only; create nothing")
	f.BoolVar(&o.allow.QuotaFill, "allow-quota-fill", false, "on your tenants (--config), let the quota checks fill each real quota to its bound for a few seconds; by default counts are proven in a bulkhead-owned copy of the quota and the tenants' headroom is never consumed (bulkhead's own tenants are always filled)")
	f.BoolVar(&o.allow.NoNodePorts, "no-node-ports", false, "EXP-004 publishes no NodePort (by default one in bulkhead's control namespace, answering only this run's token, for the seconds its probe takes); node ports are then not evaluated")
	f.BoolVarP(&o.yes, "yes", "y", o.yes, "do not ask before touching a cluster that is not a kind cluster bulkhead created (env "+EnvYes+")")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "show debug logs")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "show only check verdicts and the summary")
	o.reportOpts.addFlags(f)
	return cmd
}

const runHelp = `Run the isolation checks against a cluster and write reports.

Target (one of):
  --kind                       create a disposable kind cluster with Cilium (deleted
                               afterwards unless --keep-cluster); needs Docker
  --kubeconfig/--context       an existing cluster; bulkhead shows the API server and
                               asks before touching it (--yes in scripts), unless it
                               proves the cluster is a kind cluster it created: the
                               marker ConfigMap names a kind cluster in the local
                               Docker engine whose endpoint and CA the kubeconfig uses

Tenants:
  without --config             bulkhead creates reference tenants a and b for this run
  --config tenants.yaml        your tenants (below); what bulkhead adds to their
                               namespaces is listed under "In tenant namespaces"
  either way                   bulkhead also creates its own "control" namespace (no
                               policy: the positive control) and "sentinel" namespace
                               (its default-deny policy: tells a CNI that ignores
                               NetworkPolicy apart from an open tenant)

Tenant config (--config):
  apiVersion: bulkhead.dev/v1alpha1
  kind: TenantConfig
  tenants:
  - name: team-a                               # lowercase DNS label
    namespaces: [team-a-web, team-a-api]       # a list of namespaces ...
    identities:                                # who acts for the tenant in API checks
      users: [{name: alice, groups: [team-a]}] # impersonated
      serviceAccounts: [team-a-web/deployer]   # namespace/name
    allowedTo: [shared]                        # flows expected to work (default: none)
  - name: team-b
    namespaceSelector:                         # ... or a label selector
      matchLabels: {tenant: team-b}
  - name: shared
    namespaces: [shared-services]
  probes:                                      # all optional
    perNamespace: 2                            # probe pods per namespace (1-4; one cannot prove
                                               # paths into a tenant with one namespace)
    nodeSelector: {kubernetes.io/os: linux}
    tolerations: []
    services: false                            # also create a Service per probe pod
    imagePullSecret: ""                        # a pull secret present in every tenant namespace
  Traffic within a tenant (across its namespaces) is expected to work, between tenants
  to be blocked, unless allowedTo says otherwise.
  The file is YAML 1.2: y, n, yes, no, on, off are plain strings (namespaces: [x, y, z]
  names x, y and z). Where a name or value is expected, a plain true/false, null/~ or
  number (0123, 1e3, 0x1f) is an error: quote it (namespaces: ["0123"]). Unknown fields
  are errors; every error names file:line:column and the field.
`

const runHelpEnd = `
Everything bulkhead creates carries the labels app.kubernetes.io/managed-by=bulkhead
and bulkhead.dev/run=<run-id>. A run holds a Lease (bulkhead-run) in its control
namespace while it runs. Ctrl-C, SIGTERM and SIGHUP stop the run, which then removes
everything carrying its labels and waits until it is gone; a second signal starts
the deletion of all of it at once and exits; a third exits at once. ` + "`bulkhead cleanup`" + `
removes runs left behind (killed, their Lease expired), never a live one.

Exit codes: 0 PASS (every selected check passed or was waived), 1 FAIL (a check
failed), 2 ERROR (bulkhead or a check could not run, or the run was interrupted),
3 INCOMPLETE (nothing failed, but a selected check was not evaluated or not
proven). Leave checks out with --areas/--skip-labels where they do not apply.`

func (o *runOptions) run(ctx context.Context, stdout, stderr io.Writer, stdin io.Reader) error {
	prog := newProgress(stderr)
	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	} else if o.quiet {
		level = slog.LevelWarn
	}
	log := slog.New(&progressHandler{p: prog, level: level})
	o.target.Log = log
	o.reportOpts.dir = o.target.ReportDir

	// Everything that can be wrong with the input is found before the
	// cluster is touched.
	sel, byo, err := o.validate()
	if err != nil {
		return cannot(err)
	}
	if err := o.reportOpts.load(); err != nil {
		return cannot(err)
	}
	registry := all.Registry()
	cat, err := reports.LoadCatalogue()
	if err != nil {
		return cannot(err)
	}
	selected, err := checks.Select(registry.All(), cat, sel)
	if err != nil {
		return cannot(err)
	}
	if o.dryRun {
		return o.plan(ctx, stdout, selected, byo)
	}

	sig := interrupt.FromContext(ctx)
	o.target.Confirm = func(_ context.Context, t *target.Target) error {
		return confirm(o.yes, stdin, prog, t.Clients, fmt.Sprintf("This cluster is not a kind cluster bulkhead created (%s).\nbulkhead will create what `bulkhead run --dry-run` lists and remove it afterwards.\nProceed", t.Proof.Reason))
	}
	tgt, err := target.Prepare(ctx, &o.target)
	if tgt != nil {
		defer func() {
			if err := tgt.Release(context.WithoutCancel(ctx)); err != nil {
				prog.Line("%v", err)
			}
		}()
		if tgt.Created() && !o.target.KeepCluster {
			defer sig.OnForce("kind cluster "+tgt.KindCluster, tgt.Release)()
		}
	}
	if err != nil {
		return cannot(err)
	}
	if missing, err := preflightCheck(ctx, tgt.Clients); err != nil {
		return cannot(err)
	} else if len(missing) > 0 {
		return cannot(fmt.Errorf("the identity in use lacks permissions bulkhead needs (grant the ClusterRole in fixtures/rbac/bulkhead-runner.yaml):\n  %s", strings.Join(missing, "\n  ")))
	}

	s, err := session.New(o.sessionOptions(tgt.Clients, tgt.ProbeImage, tgt.Disposable(), tgt.Owned(), tgt.Context, byo, log))
	if err != nil {
		return cannot(err)
	}
	// A second signal deletes everything labelled with the run at once.
	defer sig.OnForce("run "+s.RunID(), s.Abort)()
	if tgt.Disposable() && tgt.KindCluster != "" {
		defer sig.OnForce("metadata decoy of run "+s.RunID(), func(ctx context.Context) error {
			_, err := decoy.CleanupLeftovers(ctx, decoy.LeftoverOptions{RunID: s.RunID(), KindCluster: tgt.KindCluster})
			return err
		})()
	}
	// Clean up however the run ends: success, failure, error or Ctrl-C.
	defer func() {
		prog.Line("cleaning up run %s ...", s.RunID())
		cctx := context.WithoutCancel(ctx)
		if err := s.Close(cctx); err != nil {
			prog.Line("clean-up incomplete: %v (bulkhead cleanup removes leftovers once the run's Lease expires)", err)
		}
		// The metadata check removes its decoy itself; this is the backstop
		// for a run interrupted at the wrong moment.
		if tgt.Disposable() && tgt.KindCluster != "" {
			if _, err := decoy.CleanupLeftovers(cctx, decoy.LeftoverOptions{RunID: s.RunID(), KindCluster: tgt.KindCluster}); err != nil {
				prog.Line("metadata decoy clean-up incomplete: %v (bulkhead cleanup removes leftovers)", err)
			}
		}
	}()
	s.SetSelection(selectionRecord(o, sel))
	prog.Line("run %s: provisioning tenants and probe pods ...", s.RunID())
	if err := s.Start(ctx); err != nil {
		return cannot(fmt.Errorf("set up run %s: %w", s.RunID(), err))
	}

	if err := s.ExecuteAll(ctx, selected, prog); err != nil {
		return cannot(err)
	}
	results := s.Results()
	if ctx.Err() == nil {
		return o.reportOpts.finish(results, prog, stdout)
	}
	// Interrupted: keep the evidence of the checks that ran. The reports say
	// the run was interrupted and the gate fails it; the exit code is 2.
	prog.Line("interrupted: writing reports for the checks that ran ...")
	results.Run.Interrupted = true
	err = o.reportOpts.finish(results, prog, stdout)
	if err == nil { // the gate fails every interrupted run; this is a backstop
		err = errors.New("the run was interrupted")
	}
	return cannot(err)
}

func (o *runOptions) sessionOptions(c *kube.Clients, probe string, disposable, owned bool, kubeContext string, byo *config.File, log *slog.Logger) session.Options {
	ver, commit := bulkhead.Version()
	return session.Options{
		Clients: c, RunID: o.runID, ProbeImage: probe,
		Disposable: disposable, CleanLeftovers: owned,
		BYO: byo, Timing: o.timing, Allow: o.allow, Log: log, Frontend: "bulkhead run",
		Build:   reports.Build{Version: ver, Commit: commit},
		Cluster: reports.Cluster{Context: kubeContext},
	}
}

// plan prints what the run would create, reading the cluster only: no
// namespace, pod or Lease is created, not even as a server-side dry-run.
func (o *runOptions) plan(ctx context.Context, stdout io.Writer, selected []checks.Check, byo *config.File) error {
	if o.runID == "" {
		o.runID = fixtures.NewRunID()
	}
	probe := o.target.ProbeImage
	if probe == "" {
		probe = "(probe image)"
	}
	if o.target.Kind {
		if byo != nil {
			return cannot(errors.New("--config names namespaces of an existing cluster, and --kind makes a new one: plan against the cluster with --kubeconfig/--context"))
		}
		p, err := session.MakePlan(ctx, o.sessionOptions(nil, probe, true, true, "", nil, o.target.Logger()))
		if err != nil {
			return cannot(err)
		}
		printPlan(stdout, p, selected, "a new kind cluster "+o.target.ClusterName, target.Proof{Disposable: true, Reason: "created for this run"})
		return nil
	}
	c, err := kube.Load(o.target.Kubeconfig, o.target.Context)
	if err != nil {
		return cannot(err)
	}
	if _, err := c.Ping(ctx); err != nil {
		return cannot(err)
	}
	proof := target.ProveDisposable(ctx, c)
	p, err := session.MakePlan(ctx, o.sessionOptions(c, probe, proof.Disposable, false, c.Context, byo, o.target.Logger()))
	if err != nil {
		return cannot(err)
	}
	printPlan(stdout, p, selected, fmt.Sprintf("%s (context %q)", c.Server, c.Context), proof)
	return nil
}

// validate checks flags and reads the tenant config.
func (o *runOptions) validate() (checks.Selection, *config.File, error) {
	sel := checks.Selection{Areas: o.areas, Profile: o.profile}
	var err error
	if sel.Labels, err = checks.ParseLabels(o.labels); err != nil {
		return sel, nil, err
	}
	if sel.SkipLabels, err = checks.ParseLabels(o.skipLabels); err != nil {
		return sel, nil, err
	}
	t := &o.target
	if t.Kind && (t.Kubeconfig != "" || t.Context != "") {
		return sel, nil, errors.New("--kind creates a cluster; it cannot be combined with --kubeconfig/--context")
	}
	if !t.Kind && t.Kubeconfig == "" && t.Context == "" {
		return sel, nil, target.ErrNoTarget
	}
	if o.timing.ConnectTimeout <= 0 || o.timing.Enforcement < 0 || o.timing.Rounds < 1 {
		return sel, nil, errors.New("--connect-timeout must be positive, --enforcement-timeout not negative and --rounds at least 1")
	}
	var byo *config.File
	if o.configFile != "" {
		if byo, err = config.Load(o.configFile); err != nil {
			return sel, nil, err
		}
	}
	return sel, byo, nil
}

func selectionRecord(o *runOptions, sel checks.Selection) map[string]string {
	rec := map[string]string{"profile": o.profile}
	if len(sel.Areas) > 0 {
		rec["areas"] = strings.Join(sel.Areas, ",")
	}
	if o.labels != "" {
		rec["labels"] = o.labels
	}
	if o.skipLabels != "" {
		rec["skipLabels"] = o.skipLabels
	}
	if o.configFile != "" {
		rec["tenantConfig"] = filepath.Base(o.configFile)
	}
	return rec
}

// confirm asks question (ending in "Proceed", say) about the cluster of c
// and wants a yes; --yes answers it in advance.
func confirm(yes bool, stdin io.Reader, prog *progress, c *kube.Clients, question string) error {
	if yes {
		return nil
	}
	f, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return fmt.Errorf("refusing to touch %s (context %q) without confirmation: pass --yes (or %s=1) when not running interactively", c.Server, c.Context, EnvYes)
	}
	prog.Line("cluster %s (context %q)", c.Server, c.Context)
	fmt.Fprintf(prog.w, "%s against %s? [y/N] ", question, c.Server)
	answer, _ := bufio.NewReader(stdin).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(answer)) {
	case "y", "yes":
		return nil
	}
	return errors.New("not confirmed")
}

// preflightCheck returns the permissions of the runner ClusterRole the
// identity in use lacks.
func preflightCheck(ctx context.Context, c *kube.Clients) ([]string, error) {
	perms, err := preflight.ForRun()
	if err != nil {
		return nil, err
	}
	return preflight.Check(ctx, c, perms)
}
