package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/fixtures/decoy"
	"github.com/bulkhead-k8s/bulkhead/internal/kube"
	"github.com/bulkhead-k8s/bulkhead/internal/target"
)

func newCleanupCommand() *cobra.Command {
	var kubeconfig, kubeContext, runID string
	yes, _ := strconv.ParseBool(os.Getenv(EnvYes))
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "cleanup",
		Short: "Remove what earlier bulkhead runs left behind",
		Long: `Remove what earlier bulkhead runs left behind (a run killed with SIGKILL, a
machine that went away): every namespace and object labelled
app.kubernetes.io/managed-by=bulkhead, or only one run's with --run.
Objects without bulkhead's labels are never touched.`,
		Example: `  bulkhead cleanup --context staging
  bulkhead cleanup --context staging --run k3x9q --yes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			out := cmd.ErrOrStderr()
			if kubeconfig == "" && kubeContext == "" {
				return cannot(errors.New("name the cluster with --kubeconfig and/or --context"))
			}
			selector := fixtures.ManagedSelector()
			if runID != "" {
				if err := fixtures.ValidateRunID(runID); err != nil {
					return cannot(err)
				}
				selector = fixtures.RunSelector(runID)
			}
			c, err := kube.Load(kubeconfig, kubeContext)
			if err != nil {
				return cannot(err)
			}
			if _, err := c.Ping(ctx); err != nil {
				return cannot(err)
			}
			nss, err := c.Core.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: selector})
			if err != nil {
				return cannot(fmt.Errorf("list bulkhead namespaces: %w", err))
			}
			fmt.Fprintf(out, "cluster %s (context %q): %d bulkhead namespace(s) match %s\n", c.Server, c.Context, len(nss.Items), selector)
			for _, ns := range nss.Items {
				fmt.Fprintf(out, "  %s (run %s, created %s)\n", ns.Name, ns.Labels[fixtures.LabelRun], ns.CreationTimestamp.Format(time.RFC3339))
			}
			if err := confirm(yes, cmd.InOrStdin(), newProgress(out), c); err != nil {
				return cannot(err)
			}
			// A metadata decoy lives outside Kubernetes (a container on the
			// kind network, routes on the nodes), only on kind clusters
			// bulkhead created.
			if proof := target.ProveDisposable(ctx, c); proof.Disposable {
				removed, err := decoy.CleanupLeftovers(ctx, decoy.LeftoverOptions{RunID: runID, KindCluster: proof.KindCluster})
				for _, r := range removed {
					fmt.Fprintf(out, "removed %s\n", r)
				}
				if err != nil {
					return cannot(fmt.Errorf("remove metadata decoy leftovers: %w", err))
				}
			}
			return cleanupWith(ctx, c, selector, wait, out)
		},
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of the cluster")
	f.StringVar(&kubeContext, "context", "", "kubeconfig context")
	f.StringVar(&runID, "run", "", "only this run's objects")
	f.BoolVarP(&yes, "yes", "y", yes, "do not ask for confirmation (env "+EnvYes+")")
	f.DurationVar(&wait, "wait", 3*time.Minute, "how long to wait for namespaces to be gone")
	return cmd
}

func cleanupWith(ctx context.Context, c *kube.Clients, selector string, wait time.Duration, out interface{ Write([]byte) (int, error) }) error {
	rep, err := fixtures.Cleanup(ctx, c, selector, wait)
	for _, ns := range rep.Namespaces {
		fmt.Fprintf(out, "deleted namespace %s\n", ns)
	}
	for _, o := range rep.Objects {
		fmt.Fprintf(out, "deleted %s\n", o)
	}
	for _, k := range rep.Unlisted {
		fmt.Fprintf(out, "not checked: %s (this identity may not list them; only bulkhead's negative-control tests create them)\n", k)
	}
	if err != nil {
		return cannot(err)
	}
	fmt.Fprintf(out, "clean: %d namespace(s), %d other object(s) removed\n", len(rep.Namespaces), len(rep.Objects))
	return nil
}
