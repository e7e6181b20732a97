package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/bulkhead-k8s/bulkhead"
	"github.com/bulkhead-k8s/bulkhead/fixtures/decoy"
	"github.com/bulkhead-k8s/bulkhead/fixtures/kindcluster"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/all"
	"github.com/bulkhead-k8s/bulkhead/internal/config"
	"github.com/bulkhead-k8s/bulkhead/internal/kube"
	"github.com/bulkhead-k8s/bulkhead/internal/preflight"
	"github.com/bulkhead-k8s/bulkhead/internal/session"
	"github.com/bulkhead-k8s/bulkhead/internal/target"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// EnvYes confirms touching a cluster bulkhead did not create, like --yes.
const EnvYes = "BULKHEAD_YES"

type runOptions struct {
	target     target.Config
	timing     checks.Timing
	allow      checks.Allowances
	configFile string
	areas      []string
	profile    string
	labels     string
	skipLabels string
	reportOpts reportOptions
	yes        bool
	verbose    bool
	quiet      bool
	runID      string
}

func newRunCommand() *cobra.Command {
	o := &runOptions{target: target.FromEnv(os.Getenv), timing: checks.DefaultTiming()}
	o.yes, _ = strconv.ParseBool(os.Getenv(EnvYes))
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the isolation checks against a cluster and write reports",
		Long: `Run the isolation checks against a cluster and write reports.

Target (one of):
  --kind                       create a disposable kind cluster with Cilium (deleted
                               afterwards unless --keep-cluster); needs Docker
  --kubeconfig/--context       an existing cluster; bulkhead shows the API server and
                               asks before touching it (--yes in scripts)

Tenants:
  without --config             bulkhead creates reference tenants a and b for this run
  --config tenants.yaml        your tenants (below); bulkhead adds only labelled probe
                               pods to their namespaces
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
  to be blocked, unless allowedTo says otherwise. Unknown fields are errors.

Everything bulkhead creates carries the labels app.kubernetes.io/managed-by=bulkhead
and bulkhead.dev/run=<run-id> and is removed at the end, on failure and on Ctrl-C.

Exit codes: 0 PASS (every selected check passed or was waived), 1 FAIL (a check
failed), 2 ERROR (bulkhead or a check could not run, or the run was interrupted),
3 INCOMPLETE (nothing failed, but a selected check was not evaluated or not
proven). Leave checks out with --areas/--skip-labels where they do not apply.`,
		Example: `  bulkhead run --kind
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
	f.StringVar(&t.ClusterName, "cluster-name", t.ClusterName, "kind cluster name (env "+target.EnvClusterName+")")
	f.BoolVar(&t.KeepCluster, "keep-cluster", t.KeepCluster, "reuse the kind cluster if it exists and keep it afterwards (env "+target.EnvKeepCluster+")")
	f.StringVar(&t.NodeImage, "kind-node-image", t.NodeImage, "kind node image (env "+kindcluster.EnvNodeImage+")")
	f.StringVar(&t.CiliumChart, "cilium-chart", t.CiliumChart, "Cilium chart: directory, .tgz, oci:// or REPO_URL/CHART (env BULKHEAD_CILIUM_CHART)")
	f.StringSliceVar(&t.CiliumValues, "cilium-values", t.CiliumValues, "extra Cilium values files (env BULKHEAD_CILIUM_VALUES, space-separated)")
	f.StringSliceVar(&t.PreloadImages, "preload-images", t.PreloadImages, "images to side-load from the local Docker engine into kind (env "+kindcluster.EnvPreloadImages+")")
	f.StringVar(&t.ProbeImage, "probe-image", t.ProbeImage, "probe image the cluster can pull (env "+target.EnvProbeImage+"); built and side-loaded on kind clusters bulkhead made")
	f.StringVar(&o.configFile, "config", "", "tenant config file (bring your own tenants); schema above")
	f.StringSliceVar(&o.areas, "areas", nil, "only these areas (network, metadata, quota, rbac, secrets, podsecurity, exposure)")
	f.StringVar(&o.profile, "profile", checks.ProfileFull, "quick (leave out slow checks) or full")
	f.StringVar(&o.labels, "labels", "", "only checks with these labels, e.g. area=network,mtb=MTB-PL1-BC-NI-1")
	f.StringVar(&o.skipLabels, "skip-labels", "", "leave out checks with these labels")
	f.StringVar(&o.runID, "run-id", "", "run ID (default: random); names the run's namespaces and report directory")
	f.DurationVar(&o.timing.ConnectTimeout, "connect-timeout", o.timing.ConnectTimeout, "per-probe connect timeout inside pods")
	f.DurationVar(&o.timing.Enforcement, "enforcement-timeout", o.timing.Enforcement, "how long to re-probe paths that do not yet match (policy enforcement delay)")
	f.BoolVar(&o.allow.NoNodePorts, "no-node-ports", false, "EXP-004 publishes no NodePort (by default one, answering only bulkhead's token, for the seconds its probe takes); node ports are then not evaluated")
	f.BoolVarP(&o.yes, "yes", "y", o.yes, "do not ask before touching a cluster bulkhead did not create (env "+EnvYes+")")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "show debug logs")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "show only check verdicts and the summary")
	o.reportOpts.addFlags(f, t)
	return cmd
}

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

	tgt, err := o.prepareTarget(ctx, prog, stdin)
	if tgt != nil {
		defer tgt.release(context.WithoutCancel(ctx), prog)
	}
	if err != nil {
		return cannot(err)
	}
	if missing, err := preflightCheck(ctx, tgt.clients); err != nil {
		return cannot(err)
	} else if len(missing) > 0 {
		return cannot(fmt.Errorf("the identity in use lacks permissions bulkhead needs (grant the ClusterRole in fixtures/rbac/bulkhead-runner.yaml):\n  %s", strings.Join(missing, "\n  ")))
	}

	ver, commit := bulkhead.Version()
	s, err := session.New(session.Options{
		Clients: tgt.clients, RunID: o.runID, ProbeImage: tgt.probeImage,
		Disposable: tgt.madeByBulkhead, CleanLeftovers: tgt.kind != nil,
		BYO: byo, Timing: o.timing, Allow: o.allow, Log: log, Frontend: "bulkhead run",
		Build:   reports.Build{Version: ver, Commit: commit},
		Cluster: reports.Cluster{Context: tgt.context},
	})
	if err != nil {
		return cannot(err)
	}
	// Clean up however the run ends: success, failure, error or Ctrl-C.
	defer func() {
		prog.Line("cleaning up run %s ...", s.RunID())
		cctx := context.WithoutCancel(ctx)
		if err := s.Close(cctx); err != nil {
			prog.Line("clean-up incomplete: %v (bulkhead cleanup removes leftovers)", err)
		}
		// The metadata check removes its decoy itself; this is the backstop
		// for a run interrupted at the wrong moment.
		if tgt.kindName != "" {
			if _, err := decoy.CleanupLeftovers(cctx, decoy.LeftoverOptions{RunID: s.RunID(), KindCluster: tgt.kindName}); err != nil {
				prog.Line("metadata decoy clean-up incomplete: %v (bulkhead cleanup removes leftovers)", err)
			}
		}
	}()
	s.SetSelection(selectionRecord(o, sel))
	prog.Line("run %s: provisioning tenants and probe pods ...", s.RunID())
	if err := s.Start(ctx); err != nil {
		return cannot(fmt.Errorf("set up run %s: %w", s.RunID(), err))
	}

	for i, c := range selected {
		if ctx.Err() != nil {
			s.Record(checks.NotRun(c, "not run: the run was interrupted before this check"))
			continue
		}
		prog.CheckStarted(c, i+1, len(selected))
		res := s.Execute(ctx, c)
		prog.CheckFinished(res, i+1, len(selected))
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
	if o.timing.ConnectTimeout <= 0 || o.timing.Enforcement < 0 {
		return sel, nil, errors.New("--connect-timeout must be positive and --enforcement-timeout not negative")
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

// runTarget is the cluster a run works against and what it owns there.
type runTarget struct {
	clients        *kube.Clients
	context        string
	probeImage     string
	madeByBulkhead bool
	// kindName is the kind cluster's name when bulkhead made it.
	kindName string
	kind     *kindcluster.Cluster
	keep     bool
}

// release deletes a kind cluster this run created (unless asked to keep it).
func (t *runTarget) release(ctx context.Context, prog *progress) {
	if t.kind == nil || !t.kind.Created() || t.keep {
		if t.kind != nil && t.keep {
			prog.Line("keeping kind cluster %s (--keep-cluster)", t.kind.Name())
		}
		return
	}
	prog.Line("deleting kind cluster %s ...", t.kind.Name())
	if err := t.kind.Destroy(ctx); err != nil {
		prog.Line("could not delete kind cluster %s: %v", t.kind.Name(), err)
	}
}

// prepareTarget creates the disposable cluster, or connects to the given
// one and confirms with the user before touching it.
func (o *runOptions) prepareTarget(ctx context.Context, prog *progress, stdin io.Reader) (*runTarget, error) {
	t := &o.target
	if t.Kind {
		return o.prepareKind(ctx, prog)
	}
	clients, err := kube.Load(t.Kubeconfig, t.Context)
	if err != nil {
		return nil, err
	}
	if _, err := clients.Ping(ctx); err != nil {
		return nil, err
	}
	rt := &runTarget{clients: clients, context: clients.Context}
	marker, made := target.ReadMarker(ctx, clients)
	rt.madeByBulkhead, rt.kindName = made, marker.KindCluster
	prog.Line("target: %s (context %q)%s", clients.Server, clients.Context, map[bool]string{true: ", a kind cluster bulkhead created", false: ""}[made])
	if !made {
		if err := confirm(o.yes, stdin, prog, clients); err != nil {
			return nil, err
		}
	}
	rt.probeImage = t.ProbeImage
	if rt.probeImage == "" {
		if !made || marker.KindCluster == "" {
			return nil, errors.New("pass --probe-image with a probe image this cluster can pull (`bulkhead probe-image --push REF` builds and pushes one)")
		}
		opts := t.KindOptions()
		opts.Name, opts.Reuse = marker.KindCluster, true
		if rt.probeImage, err = t.ProvideProbeImage(ctx, kindcluster.New(opts)); err != nil {
			return nil, err
		}
	}
	return rt, nil
}

// confirm asks before touching a cluster bulkhead did not create.
func confirm(yes bool, stdin io.Reader, prog *progress, c *kube.Clients) error {
	if yes {
		return nil
	}
	f, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return fmt.Errorf("refusing to touch %s (context %q) without confirmation: pass --yes (or %s=1) when not running interactively", c.Server, c.Context, EnvYes)
	}
	prog.Line("bulkhead will create labelled namespaces and probe pods in this cluster and remove them afterwards.")
	fmt.Fprintf(prog.w, "Proceed against %s? [y/N] ", c.Server)
	answer, _ := bufio.NewReader(stdin).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(answer)) {
	case "y", "yes":
		return nil
	}
	return errors.New("not confirmed")
}

// prepareKind creates (or reuses) the disposable kind cluster with Cilium
// and side-loads a probe image.
func (o *runOptions) prepareKind(ctx context.Context, prog *progress) (*runTarget, error) {
	t := &o.target
	kc := kindcluster.New(t.KindOptions())
	rt := &runTarget{kind: kc, keep: t.KeepCluster, madeByBulkhead: true, kindName: t.ClusterName}
	start := time.Now()
	prog.Line("creating kind cluster %s (this takes a few minutes) ...", t.ClusterName)
	kubeconfig, err := kc.Create(ctx)
	if err != nil {
		return rt, err
	}
	clients, err := kube.Load(kubeconfig, "")
	if err != nil {
		return rt, err
	}
	rt.clients, rt.context = clients, clients.Context
	if err := kc.WaitForControlPlane(ctx, nil); err != nil {
		return rt, err
	}
	if err := t.PreloadImagesInto(ctx, kc); err != nil {
		return rt, err
	}
	if _, err := t.InstallCNI(ctx, kubeconfig, ""); err != nil {
		return rt, err
	}
	if err := target.MarkCluster(ctx, clients, t.ClusterName); err != nil {
		return rt, err
	}
	if rt.probeImage, err = t.ProvideProbeImage(ctx, kc); err != nil {
		return rt, err
	}
	prog.Line("kind cluster %s ready in %s", t.ClusterName, time.Since(start).Round(time.Second))
	return rt, nil
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
