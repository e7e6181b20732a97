package target

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bulkhead-k8s/bulkhead/internal/kube"
	"github.com/bulkhead-k8s/bulkhead/internal/target/kindcluster"
)

// Target is the cluster a run works against, ready: clients, the probe
// image the cluster can run, whether it is disposable (proven), and the
// kind cluster Prepare made, which Release deletes.
type Target struct {
	Clients *kube.Clients
	// Kubeconfig is the file the clients come from (kind's, when Prepare
	// made the cluster); Context is the context in it.
	Kubeconfig, Context string
	ProbeImage          string
	// Proof says whether the cluster is a kind cluster bulkhead created.
	Proof Proof
	// KindCluster names the kind cluster when the cluster is one bulkhead
	// made or proved (the metadata decoy and its clean-up need it).
	KindCluster string

	kind *kindcluster.Cluster
	keep bool
	cfg  *Config
}

// Disposable reports whether the cluster is proven to be a kind cluster
// bulkhead created.
func (t *Target) Disposable() bool { return t != nil && t.Proof.Disposable }

// Owned reports whether Prepare created or reused the kind cluster for
// this process (not one reached through a kubeconfig): earlier runs'
// leftovers there are this user's to remove.
func (t *Target) Owned() bool { return t != nil && t.kind != nil }

// Created reports whether Prepare created the kind cluster (Release
// deletes it unless asked to keep it).
func (t *Target) Created() bool { return t != nil && t.kind != nil && t.kind.Created() }

// Prepare makes the target of c ready. With c.Kind it creates (or, with
// KeepCluster, reuses) the kind cluster, installs Cilium, marks the cluster
// and side-loads a probe image. Otherwise it connects to the kubeconfig's
// cluster, proves whether it is disposable, asks c.Confirm before going on
// when it is not, and uses the given probe image (or, on a proven kind
// cluster, builds and side-loads one).
//
// Prepare returns the target even with an error, as far as it got: the
// caller Releases it either way, so a half-made kind cluster is deleted.
func Prepare(ctx context.Context, c *Config) (*Target, error) {
	if c.Kind {
		return prepareKind(ctx, c)
	}
	return prepareExisting(ctx, c)
}

func prepareKind(ctx context.Context, c *Config) (*Target, error) {
	log := c.Logger()
	kc := kindcluster.New(c.KindOptions())
	t := &Target{kind: kc, keep: c.KeepCluster, cfg: c, KindCluster: c.ClusterName}
	start := time.Now()
	log.Info("creating kind cluster (this takes a few minutes)", "name", c.ClusterName)
	kubeconfig, err := kc.Create(ctx)
	if err != nil {
		return t, err
	}
	t.Kubeconfig = kubeconfig
	clients, err := kube.Load(kubeconfig, "")
	if err != nil {
		return t, err
	}
	t.Clients, t.Context = clients, clients.Context
	how := "created by this run"
	if kc.Reused() {
		how = "reused (--keep-cluster)"
	}
	t.Proof = Proof{Disposable: true, KindCluster: c.ClusterName, Reason: fmt.Sprintf("kind cluster %q, %s", c.ClusterName, how)}
	if err := kc.WaitForControlPlane(ctx, nil); err != nil {
		return t, err
	}
	if err := c.PreloadImagesInto(ctx, kc); err != nil {
		return t, err
	}
	if _, err := c.InstallCNI(ctx, kubeconfig, ""); err != nil {
		return t, err
	}
	if err := MarkCluster(ctx, clients, c.ClusterName); err != nil {
		return t, err
	}
	if t.ProbeImage, err = c.ProvideProbeImage(ctx, kc); err != nil {
		return t, err
	}
	log.Info("kind cluster ready", "name", c.ClusterName, "took", time.Since(start).Round(time.Second))
	return t, nil
}

func prepareExisting(ctx context.Context, c *Config) (*Target, error) {
	if c.Kubeconfig == "" && c.Context == "" {
		return nil, ErrNoTarget
	}
	clients, err := kube.Load(c.Kubeconfig, c.Context)
	if err != nil {
		return nil, err
	}
	if _, err := clients.Ping(ctx); err != nil {
		return nil, err
	}
	t := &Target{Clients: clients, Kubeconfig: c.Kubeconfig, Context: clients.Context, cfg: c}
	t.Proof = ProveDisposable(ctx, clients)
	if t.Proof.Disposable {
		t.KindCluster = t.Proof.KindCluster
	}
	c.Logger().Info("target", "server", clients.Server, "context", clients.Context, "disposable", t.Proof.Disposable, "why", t.Proof.Reason)
	if !t.Proof.Disposable && c.Confirm != nil {
		if err := c.Confirm(ctx, t); err != nil {
			return t, err
		}
	}
	t.ProbeImage = c.ProbeImage
	if t.ProbeImage != "" {
		return t, nil
	}
	if !t.Proof.Disposable {
		return t, errors.New("pass --probe-image with a probe image this cluster can pull (`bulkhead probe-image --push REF` builds and pushes one); bulkhead builds and side-loads one only into kind clusters it created")
	}
	opts := c.KindOptions()
	opts.Name, opts.Reuse = t.KindCluster, true
	t.ProbeImage, err = c.ProvideProbeImage(ctx, kindcluster.New(opts))
	return t, err
}

// Release deletes the kind cluster Prepare created, unless it was asked to
// keep it. It does nothing for a cluster reached through a kubeconfig.
func (t *Target) Release(ctx context.Context) error {
	if t == nil || t.kind == nil {
		return nil
	}
	log := t.cfg.Logger()
	if t.keep {
		if t.kind.Created() || t.kind.Reused() {
			log.Info("keeping kind cluster (--keep-cluster)", "name", t.kind.Name())
		}
		return nil
	}
	if !t.kind.Created() {
		return nil
	}
	log.Info("deleting kind cluster", "name", t.kind.Name())
	if err := t.kind.Destroy(ctx); err != nil {
		return fmt.Errorf("delete kind cluster %s: %w", t.kind.Name(), err)
	}
	return nil
}
