package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/kube"
	"github.com/bulkhead-k8s/bulkhead/internal/runs"
	"github.com/bulkhead-k8s/bulkhead/internal/target"
	"github.com/bulkhead-k8s/bulkhead/internal/target/decoy"
)

type cleanupOptions struct {
	kubeconfig, context, run string
	yes, force               bool
	wait                     time.Duration
}

func newCleanupCommand() *cobra.Command {
	o := &cleanupOptions{}
	o.yes, _ = strconv.ParseBool(os.Getenv(EnvYes))
	cmd := &cobra.Command{
		Use:   "cleanup",
		Short: "Remove what bulkhead runs left behind (never a live run)",
		Long: `Remove what bulkhead runs left behind: a run killed with SIGKILL, a machine
that went away. Every run holds a Lease (bulkhead-run) in its control namespace
and renews it every ` + (runs.LeaseDuration / 4).String() + ` while it runs; cleanup removes only runs whose
Lease expired (not renewed for ` + runs.LeaseDuration.String() + `), and never a live run. It finds a run's
objects by their labels (app.kubernetes.io/managed-by=bulkhead,
bulkhead.dev/run=<run-id>) in every kind the API server serves, lists every
kind and object it will delete, and asks before deleting (--yes in scripts).
Objects without bulkhead's labels are never touched.

--run limits it to one run; a live run is refused unless --force (for a run
whose process you know is gone, when you do not want to wait for its Lease).`,
		Example: `  bulkhead cleanup --context staging
  bulkhead cleanup --context staging --run k3x9q --yes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.cleanup(cmd.Context(), cmd.ErrOrStderr(), cmd.InOrStdin())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster")
	f.StringVar(&o.context, "context", "", "kubeconfig context")
	f.StringVar(&o.run, "run", "", "only this run's objects")
	f.BoolVar(&o.force, "force", false, "with --run: remove the run even if its Lease is live")
	f.BoolVarP(&o.yes, "yes", "y", o.yes, "do not ask for confirmation (env "+EnvYes+")")
	f.DurationVar(&o.wait, "wait", 3*time.Minute, "how long to wait for the removed objects to be gone")
	return cmd
}

func (o *cleanupOptions) cleanup(ctx context.Context, out io.Writer, stdin io.Reader) error {
	if o.kubeconfig == "" && o.context == "" {
		return cannot(errors.New("name the cluster with --kubeconfig and/or --context"))
	}
	if o.force && o.run == "" {
		return cannot(errors.New("--force needs --run: it overrides the Lease of one run you name"))
	}
	selector := fixtures.ManagedSelector()
	if o.run != "" {
		if err := fixtures.ValidateRunID(o.run); err != nil {
			return cannot(err)
		}
		selector = fixtures.RunSelector(o.run)
	}
	c, err := kube.Load(o.kubeconfig, o.context)
	if err != nil {
		return cannot(err)
	}
	if _, err := c.Ping(ctx); err != nil {
		return cannot(err)
	}
	fmt.Fprintf(out, "cluster %s (context %q): looking for objects labelled %s in every kind ...\n", c.Server, c.Context, selector)
	survey, err := runs.Take(ctx, c, selector, time.Now())
	if survey == nil {
		return cannot(err)
	}
	listErr := err
	remove := o.choose(survey, out)
	if len(survey.Inventory.Unlisted) > 0 {
		fmt.Fprintf(out, "not checked (this identity may not list them, so no run made with it created any): %s\n", strings.Join(survey.Inventory.Unlisted, ", "))
	}
	if len(survey.Unlabelled) > 0 {
		fmt.Fprintf(out, "left alone: %d object(s) with bulkhead's label but no run label (no run can be shown to own them): %s\n",
			len(survey.Unlabelled), strings.Join(names(survey.Unlabelled, 10), ", "))
	}
	if o.run != "" && len(survey.Runs) == 0 {
		fmt.Fprintf(out, "run %s has nothing on this cluster\n", o.run)
	}
	if len(remove) == 0 {
		if listErr != nil {
			return cannot(fmt.Errorf("some kinds could not be listed: %w", listErr))
		}
		fmt.Fprintln(out, "nothing to remove")
		return nil
	}
	if err := confirm(o.yes, stdin, newProgress(out), c, fmt.Sprintf("Remove the %d run(s) above", len(remove))); err != nil {
		return cannot(err)
	}
	errs := []error{listErr}
	// A metadata decoy lives outside Kubernetes (a container on the kind
	// network, routes on the nodes), only on kind clusters bulkhead made.
	proof := target.ProveDisposable(ctx, c)
	total := runs.Removed{}
	for _, r := range remove {
		rep, err := runs.Remove(ctx, c, r.Objects, o.wait)
		total.Namespaces = append(total.Namespaces, rep.Namespaces...)
		total.Objects = append(total.Objects, rep.Objects...)
		for _, ns := range rep.Namespaces {
			fmt.Fprintf(out, "deleted namespace %s\n", ns)
		}
		for _, obj := range rep.Objects {
			fmt.Fprintf(out, "deleted %s\n", obj)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("run %s: %w", r.ID, err))
		}
		if proof.Disposable {
			removed, err := decoy.CleanupLeftovers(ctx, decoy.LeftoverOptions{RunID: r.ID, KindCluster: proof.KindCluster})
			for _, d := range removed {
				fmt.Fprintf(out, "removed %s\n", d)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("run %s: remove metadata decoy leftovers: %w", r.ID, err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return cannot(err)
	}
	fmt.Fprintf(out, "clean: %d run(s), %d namespace(s) and %d other object(s) removed\n", len(remove), len(total.Namespaces), len(total.Objects))
	return nil
}

// choose prints every run found and returns those to remove: the ones
// left behind, or the one named with --run (live only with --force).
func (o *cleanupOptions) choose(s *runs.Survey, out io.Writer) []runs.Run {
	var remove []runs.Run
	for _, r := range s.Runs {
		switch {
		case r.State == runs.Left:
			fmt.Fprintf(out, "run %s: left behind (%s): will be removed\n", r.ID, r.Why)
		case r.State == runs.Live && o.run != "" && o.force:
			fmt.Fprintf(out, "run %s: LIVE (%s): will be removed (--force)\n", r.ID, r.Why)
		case r.State == runs.Live:
			fmt.Fprintf(out, "run %s: live (%s): left alone\n", r.ID, r.Why)
			if o.run != "" {
				fmt.Fprintln(out, "  a live run is never removed: wait until its Lease expires, or pass --force if you know its process is gone")
			}
			continue
		default:
			fmt.Fprintf(out, "run %s: state unknown (its Lease could not be read): left alone\n", r.ID)
			continue
		}
		describeRun(out, r)
		remove = append(remove, r)
	}
	return remove
}

// describeRun lists, by kind, what removing r deletes: its namespaces
// (with what is in them), its objects elsewhere, and what those own.
func describeRun(out io.Writer, r runs.Run) {
	nss, inside, dependents, rest := runs.Parts(r.Objects)
	outside := map[string][]runs.Object{}
	for _, o := range rest {
		outside[o.Kind] = append(outside[o.Kind], o)
	}
	if len(nss) > 0 {
		fmt.Fprintf(out, "    Namespace ×%d: %s", len(nss), strings.Join(names(nss, 10), ", "))
		if len(inside) > 0 {
			fmt.Fprintf(out, " (with what is in them: %s)", runs.KindCounts(inside))
		}
		fmt.Fprintln(out)
	}
	kinds := make([]string, 0, len(outside))
	for k := range outside {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(out, "    %s ×%d: %s\n", k, len(outside[k]), strings.Join(names(outside[k], 10), ", "))
	}
	if len(dependents) > 0 {
		fmt.Fprintf(out, "    and what those own (deleted with them): %s\n", runs.KindCounts(dependents))
	}
}

// names lists up to max objects by namespace/name, saying how many more.
func names(objs []runs.Object, max int) []string {
	var out []string
	for i, o := range objs {
		if i == max {
			out = append(out, fmt.Sprintf("and %d more", len(objs)-max))
			break
		}
		if o.Namespace != "" {
			out = append(out, o.Namespace+"/"+o.Name)
		} else {
			out = append(out, o.Name)
		}
	}
	return out
}
