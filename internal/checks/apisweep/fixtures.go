package apisweep

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/kube"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
)

// fixtureSet is what the sweep puts into the cluster: canaries, the
// API probe pods and the egress policy that lets them reach the API
// server. It removes all of it when the sweep ends.
type fixtureSet struct {
	env     *checks.Env
	applier *kube.Applier
	created []*unstructured.Unstructured
	pods    []checks.ProbePod

	// What was planted: the canaries, their values (never logged or
	// stored), and facts for every check's evidence.
	canaries []fixtures.Canary
	values   [][]byte
	notes    []string
}

func newFixtureSet(env *checks.Env) *fixtureSet {
	return &fixtureSet{env: env, applier: kube.NewApplier(env.Kube)}
}

func (f *fixtureSet) create(ctx context.Context, objs ...*unstructured.Unstructured) error {
	for _, o := range objs {
		// Registered before creating, so a half-failed create is removed too.
		f.created = append(f.created, o)
		if err := f.applier.Create(ctx, o); err != nil {
			return err
		}
	}
	return nil
}

// teardown deletes what the sweep created, newest first, even when ctx is
// cancelled, and waits until its pods are gone: they count against the
// tenant's quota until then, and the next sweep needs the room.
func (f *fixtureSet) teardown(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	log := f.env.Logger()
	for i := len(f.created) - 1; i >= 0; i-- {
		if err := f.applier.Delete(ctx, f.created[i]); err != nil {
			log.Warn("API sweep: clean-up failed (the run's clean-up removes it with its namespace)", "object", fixtures.Describe(f.created[i]), "err", err)
		}
	}
	var left []string
	err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		left = left[:0]
		for _, p := range f.pods {
			_, err := f.env.Kube.Core.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
			if !apierrors.IsNotFound(err) {
				left = append(left, p.Namespace+"/"+p.Name)
			}
		}
		return len(left) == 0, nil
	})
	if err != nil {
		log.Warn("API sweep: API probe pods still terminating after a minute", "pods", left)
	}
}

// setup plants a canary in each reference tenant, starts in its namespace a
// pod with the tenant ServiceAccount's own token (mounting the canary), lets
// those pods reach the API server, and starts bulkhead's own API probe pods
// in the control namespace (ownPods). Only namespaces bulkhead created are
// touched: tenants bulkhead did not create get no canary and no pod here.
func (f *fixtureSet) setup(ctx context.Context, sc *Scope, lists []*metav1.APIResourceList) error {
	env := f.env
	suffix := fixtures.NewRunID()
	peers, perr := apiPeers(ctx, env)
	cilium := serves(lists, "cilium.io/v2", "ciliumnetworkpolicies")
	for _, t := range env.Topology.Tenants {
		if !t.Reference || !t.Isolated || t.Sentinel || len(t.Namespaces) == 0 {
			continue
		}
		ns := t.Namespaces[0]
		canary, obj, err := fixtures.NewCanary(env.RunID, t.Name, ns, "bulkhead-canary-"+suffix)
		if err != nil {
			return err
		}
		value, err := fixtures.CanaryValue(obj)
		if err != nil {
			return err
		}
		if err := f.create(ctx, obj); err != nil {
			return fmt.Errorf("plant the canary in tenant %s: %w", t.Name, err)
		}
		f.values = append(f.values, value)
		f.canaries = append(f.canaries, canary)
		sc.Canaries[t.Name] = canary

		if perr != nil {
			f.notes = append(f.notes, "no in-pod requests: "+perr.Error())
			continue
		}
		egress, err := fixtures.RenderAPIEgress(fixtures.APIEgressSpec{RunID: env.RunID, Tenant: t.Name, Namespace: ns,
			Name: "bulkhead-api-egress-" + suffix, Peers: peers, Cilium: cilium})
		if err != nil {
			return err
		}
		if err := f.create(ctx, egress...); err != nil {
			return fmt.Errorf("let API probe pods of tenant %s reach the API server: %w", t.Name, err)
		}
		for _, id := range t.Identities {
			sans, sa, ok := strings.Cut(id.ServiceAccount, "/")
			if !ok || sans != ns {
				continue
			}
			name := "bulkhead-api-" + suffix
			if err := f.startPod(ctx, fixtures.APIProbeSpec{RunID: env.RunID, Tenant: t.Name, Namespace: ns, Name: name,
				Image: env.ProbeImage, ServiceAccount: sa, Token: true, CanarySecret: canary.Name, TolerateControlPlane: env.Disposable}); err != nil {
				return err
			}
			sc.TokenPods[id.ServiceAccount] = name
			sc.CanaryPods[t.Name] = name
			break
		}
	}
	return f.ownPods(ctx, sc, suffix)
}

// ownPods starts, in bulkhead's own unprotected control namespace (there in
// every run, reference or bring-your-own, and open to the API server), a pod
// without any token (RBAC-004) and one with its ServiceAccount's own token:
// the same namespace's positive control for RBAC-004, and a pod that asked
// for a token for SEC-003. Without a control namespace there are neither.
func (f *fixtureSet) ownPods(ctx context.Context, sc *Scope, suffix string) error {
	env := f.env
	ctl, ok := controlTenant(env.Topology)
	if !ok {
		return nil
	}
	ns := ctl.Namespaces[0]
	anon := "bulkhead-anon-" + suffix
	if err := f.startPod(ctx, fixtures.APIProbeSpec{RunID: env.RunID, Tenant: ctl.Name, Namespace: ns, Name: anon,
		Image: env.ProbeImage, TolerateControlPlane: env.Disposable}); err != nil {
		return err
	}
	sc.AnonymousPod, sc.AnonymousTenant = ns+"/"+anon, ctl.Name
	name := "bulkhead-api-" + suffix
	if err := f.startPod(ctx, fixtures.APIProbeSpec{RunID: env.RunID, Tenant: ctl.Name, Namespace: ns, Name: name,
		Image: env.ProbeImage, ServiceAccount: fixtures.ProbeServiceAccount, Token: true, TolerateControlPlane: env.Disposable}); err != nil {
		return err
	}
	sc.TokenPods[ns+"/"+fixtures.ProbeServiceAccount] = name
	return nil
}

// controlTenant is bulkhead's own unprotected control namespace of the run.
func controlTenant(top checks.Topology) (checks.Tenant, bool) {
	for _, t := range top.Unprotected() {
		if t.Reference && t.Name == fixtures.TenantControl && len(t.Namespaces) > 0 {
			return t, true
		}
	}
	return checks.Tenant{}, false
}

func (f *fixtureSet) startPod(ctx context.Context, spec fixtures.APIProbeSpec) error {
	objs, err := fixtures.RenderAPIProbe(spec)
	if err != nil {
		return err
	}
	if err := f.create(ctx, objs...); err != nil {
		return fmt.Errorf("start API probe pod: %w", err)
	}
	f.pods = append(f.pods, checks.ProbePod{Tenant: spec.Tenant, Namespace: spec.Namespace, Name: spec.Name})
	return nil
}

func (f *fixtureSet) waitReady(ctx context.Context) error {
	refs := make([]kube.PodRef, len(f.pods))
	for i, p := range f.pods {
		refs[i] = kube.PodRef{Namespace: p.Namespace, Name: p.Name}
	}
	_, err := f.env.Kube.WaitPodsReady(ctx, refs, podReadyTimeout)
	if err != nil {
		return fmt.Errorf("API probe %w", err)
	}
	return nil
}

// apiPeers are the addresses a pod dials to reach the API server: the
// kubernetes Service's ClusterIP and the endpoints behind it.
func apiPeers(ctx context.Context, env *checks.Env) ([]fixtures.APIPeer, error) {
	var peers []fixtures.APIPeer
	svc, err := env.Kube.Core.CoreV1().Services(metav1.NamespaceDefault).Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("read the kubernetes Service: %w", err)
	}
	for _, ip := range svc.Spec.ClusterIPs {
		if a, err := netip.ParseAddr(ip); err == nil {
			for _, p := range svc.Spec.Ports {
				peers = append(peers, fixtures.APIPeer{IP: a, Port: int(p.Port)})
			}
		}
	}
	eps, err := env.Kube.Core.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=kubernetes"})
	if err != nil {
		return nil, fmt.Errorf("read the kubernetes Service's endpoints: %w", err)
	}
	for _, es := range eps.Items {
		for _, ep := range es.Endpoints {
			for _, addr := range ep.Addresses {
				a, err := netip.ParseAddr(addr)
				if err != nil {
					continue
				}
				for _, p := range es.Ports {
					if p.Port != nil {
						peers = append(peers, fixtures.APIPeer{IP: a, Port: int(*p.Port)})
					}
				}
			}
		}
	}
	if len(peers) == 0 {
		return nil, errors.New("the kubernetes Service has no address")
	}
	return peers, nil
}

// Footprint is what the API sweep (shared by the rbac checks and SEC-001,
// SEC-002) puts into the cluster, only into namespaces bulkhead created.
var Footprint = []checks.Footprint{{Where: checks.OwnNamespaces, Kinds: []string{"Secret", "Pod", "NetworkPolicy", "CiliumNetworkPolicy"},
	What:     "per reference tenant a canary Secret, an API probe pod with its ServiceAccount's token and an egress policy to the API server; two API probe pods in the control namespace",
	Lifetime: "while the API sweep runs; deleted when it ends"}}
