package rbac

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/kube"
	"github.com/bulkhead-k8s/bulkhead/internal/probing"
	"github.com/bulkhead-k8s/bulkhead/probes/wire"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// SweepKey is the memo key of the shared sweep. A negative-control test
// runs checks on a derived env (its own memo) to sweep afresh.
const SweepKey = "rbac/sweep"

// Tuning of the sweep.
const (
	// parallel bounds concurrent access reviews and requests from
	// bulkhead's process, and concurrent calls inside each pod.
	parallel = 32
	// requestTimeout bounds one request (a watch ends after 1s server-side).
	requestTimeout = 15 * time.Second
	// podReadyTimeout bounds the wait for the API probe pods.
	podReadyTimeout = 2 * time.Minute
	// execTimeout bounds one exec that runs a pod's whole batch.
	execTimeout = 5 * time.Minute
)

// Result is one attempt, what came back and the verdict.
type Result struct {
	Attempt
	Review *Review
	Answer *wire.APIResult
	// Pod the real request came from ("ns/name"), for in-pod requests.
	Pod string
	Verdict
	At time.Time
}

// Observation is the evidence for one result.
func (r Result) Observation() reports.Observation {
	actor := reports.Actor{Tenant: r.Tenant, Identity: r.Identity.User}
	if ns, pod, ok := strings.Cut(r.Pod, "/"); ok {
		actor.Namespace, actor.Pod = ns, pod
	}
	o := reports.Observation{
		Role: r.Role, Actor: actor, Target: r.Target, Method: r.Req.Describe(),
		Expected: string(r.Expect), Observed: r.Observed, OK: r.OK, Detail: r.Detail, Attempts: 1, At: r.At,
	}
	if r.Answer != nil {
		o.LatencyMS = r.Answer.LatencyMS
	}
	return o
}

// Sweep is everything the API checks tried in one go: the rbac and secrets
// checks each read their slice of it.
type Sweep struct {
	Results []Result
	// Notes by check ID ("" for every check).
	Notes map[string][]string
	// Canaries planted for the sweep (removed when it ended).
	Canaries []fixtures.Canary
	// PodTokens says, for each API probe pod ("ns/name"), whether it had a
	// ServiceAccount token mounted.
	PodTokens map[string]bool
	Elapsed   time.Duration

	canaryValues [][]byte
	probeOutputs [][]byte
}

// CanaryValues are the values of the canaries the sweep planted, for tests
// that assert they appear in no result, log or probe output. Never log or
// store them.
func (s *Sweep) CanaryValues() [][]byte { return s.canaryValues }

// ProbeOutputs are the raw standard outputs of every exec the sweep ran
// into a pod, for the same tests.
func (s *Sweep) ProbeOutputs() [][]byte { return s.probeOutputs }

// Outcome is the slice of the sweep that belongs to check id.
func (s *Sweep) Outcome(id string) checks.Outcome {
	var out checks.Outcome
	for _, r := range s.Results {
		if r.Check == id {
			out.Observations = append(out.Observations, r.Observation())
		}
	}
	out.Notes = append(append(out.Notes, s.Notes[id]...), s.Notes[""]...)
	return out
}

// Shared returns the run's sweep, running it on first use.
func Shared(ctx context.Context, env *checks.Env) (*Sweep, error) {
	return checks.Memo(env, SweepKey, func() (*Sweep, error) { return runSweep(ctx, env) })
}

// Plan is every attempt of every API check.
func Plan(s Scope) []Attempt {
	var out []Attempt
	out = append(out, CrossNamespacePlan(s, IDCrossNamespace)...)
	out = append(out, ClusterScopePlan(s, IDClusterScope)...)
	out = append(out, EscalationPlan(s, IDEscalation)...)
	out = append(out, AnonymousPlan(s, IDAnonymous)...)
	out = append(out, SecretReadPlan(s, IDSecretRead)...)
	out = append(out, SecretPodsPlan(s, IDSecretPods)...)
	return out
}

func runSweep(ctx context.Context, env *checks.Env) (_ *Sweep, err error) {
	start := time.Now()
	log := env.Logger()
	sw := &Sweep{Notes: map[string][]string{}, PodTokens: map[string]bool{}}
	note := func(id, format string, args ...any) {
		sw.Notes[id] = append(sw.Notes[id], fmt.Sprintf(format, args...))
	}

	sc := Scope{RunID: env.RunID, Top: env.Topology, Canaries: map[string]fixtures.Canary{},
		CanaryPods: map[string]string{}, TokenPods: map[string]string{}}
	disc := memory.NewMemCacheClient(env.Kube.Core.Discovery())
	lists, derr := discovery.ServerPreferredResources(disc)
	if derr != nil && len(lists) == 0 {
		return nil, fmt.Errorf("discover the API server's resources: %w", derr)
	}
	if derr != nil {
		note(IDCrossNamespace, "discovery was partial, these API groups were not tried: %v", derr)
	}
	sc.Resources = NamespacedResources(lists)
	var missing []string
	sc.ClusterResources, missing = ServedClusterScoped(lists)
	note(IDCrossNamespace, "%d namespaced resources discovered and tried with %s: %s", len(sc.Resources), strings.Join(MatrixVerbs, ", "), resourceNames(sc.Resources))
	if len(missing) > 0 {
		note(IDClusterScope, "not served by this cluster, not tried: %s", strings.Join(missing, ", "))
	}
	sc.Admin = whoAmI(ctx, env)
	if sc.Node, err = someNode(ctx, env); err != nil {
		return nil, err
	}

	fx := &fixtureSet{env: env, applier: fixtures.NewApplier(env.Kube)}
	defer fx.teardown(ctx)
	if err := fx.setup(ctx, sw, &sc, lists); err != nil {
		return nil, err
	}
	for _, c := range sw.Canaries {
		note(IDSecretRead, "canary: %s", c)
		if pod, ok := sc.CanaryPods[c.Tenant]; ok {
			note(IDSecretPods, "canary: %s, mounted in pod %s/%s at %s", c, c.Namespace, pod, canaryFile)
		}
	}
	for _, t := range sc.actors() {
		if _, ok := sc.Canaries[t.Name]; !ok {
			note(IDSecretRead, "tenant %s has no canary (bulkhead plants Secrets only in namespaces it created): reads of its Secrets address %s, which does not exist, so a 403 is authorization's deny and a 404 a read let through; its own list of Secrets is the positive control", t.Name, sc.absent())
		}
	}
	log.Info("rbac sweep: fixtures ready", "canaries", len(sw.Canaries), "tokenPods", len(sc.TokenPods), "anonymousPod", sc.AnonymousPod)

	attempts := Plan(sc)
	reviews, nReviews := runReviews(ctx, env, attempts)
	kept := attempts[:0:0]
	keptReviews := []*Review{}
	dropped := 0
	for i, a := range attempts {
		if a.IfReviewAllows && (reviews[i] == nil || !reviews[i].Allowed) {
			dropped++
			continue
		}
		kept = append(kept, a)
		keptReviews = append(keptReviews, reviews[i])
	}
	answers, pods, stats, err := runReal(ctx, env, sw, sc, kept)
	if err != nil {
		return nil, err
	}
	for i, a := range kept {
		v := Judge(a, keptReviews[i], answers[i])
		at := start
		if answers[i] != nil && !answers[i].Started.IsZero() {
			at = answers[i].Started
		}
		sw.Results = append(sw.Results, Result{Attempt: a, Review: keptReviews[i], Answer: answers[i], Pod: pods[i], Verdict: v, At: at})
	}
	sw.Elapsed = time.Since(start)
	note("", "API sweep: %d attempts (%d distinct access reviews asked, %d requests from bulkhead's process, %d from inside %d pod(s)) in %s; %d own-namespace controls left out because the identity's own grant does not allow them",
		len(kept), nReviews, stats.process, stats.inPod, stats.pods, sw.Elapsed.Round(10*time.Millisecond), dropped)
	log.Info("rbac sweep: done", "attempts", len(kept), "elapsed", sw.Elapsed.Round(time.Millisecond))
	return sw, nil
}

// NamespacedResources are the namespaced resources of discovery lists
// (preferred versions), without subresources, one per group and resource,
// sorted.
func NamespacedResources(lists []*metav1.APIResourceList) []Resource {
	seen := map[string]bool{}
	var out []Resource
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range l.APIResources {
			if !r.Namespaced || strings.Contains(r.Name, "/") {
				continue
			}
			res := Resource{Group: gv.Group, Version: gv.Version, Resource: r.Name, Kind: r.Kind, Namespaced: true}
			if seen[res.GroupResource()] {
				continue
			}
			seen[res.GroupResource()] = true
			out = append(out, res)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Group != out[j].Group {
			return out[i].Group < out[j].Group
		}
		return out[i].Resource < out[j].Resource
	})
	return out
}

// ServedClusterScoped returns the ClusterScoped resources the lists serve
// (at the version they serve) and names the ones they do not.
func ServedClusterScoped(lists []*metav1.APIResourceList) (served []Resource, missing []string) {
	versions := map[string]string{}
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range l.APIResources {
			if !r.Namespaced && !strings.Contains(r.Name, "/") {
				versions[r.Name+"."+gv.Group] = gv.Version
			}
		}
	}
	for _, r := range ClusterScoped {
		v, ok := versions[r.Resource+"."+r.Group]
		if !ok {
			missing = append(missing, r.GroupResource())
			continue
		}
		r.Version = v
		served = append(served, r)
	}
	return served, missing
}

func resourceNames(rs []Resource) string {
	names := make([]string, len(rs))
	for i, r := range rs {
		names[i] = r.GroupResource()
	}
	return strings.Join(names, ", ")
}

// whoAmI is bulkhead's own user name, for evidence.
func whoAmI(ctx context.Context, env *checks.Env) string {
	ssr, err := env.Kube.Core.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil || ssr.Status.UserInfo.Username == "" {
		return "bulkhead"
	}
	return ssr.Status.UserInfo.Username
}

func someNode(ctx context.Context, env *checks.Env) (string, error) {
	for _, p := range env.Topology.Probes {
		if p.Node != "" {
			return p.Node, nil
		}
	}
	nodes, err := env.Kube.Core.CoreV1().Nodes().List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		return "", fmt.Errorf("list nodes (for nodes/proxy): %w", err)
	}
	if len(nodes.Items) == 0 {
		return "", nil
	}
	return nodes.Items[0].Name, nil
}

// fixtureSet is what the sweep puts into the cluster: canaries, the
// API probe pods and the egress policy that lets them reach the API
// server. It removes all of it when the sweep ends.
type fixtureSet struct {
	env     *checks.Env
	applier *fixtures.Applier
	created []*unstructured.Unstructured
	pods    []checks.ProbePod
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
			log.Warn("rbac sweep: clean-up failed (the run's clean-up removes it with its namespace)", "object", fixtures.Describe(f.created[i]), "err", err)
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
		log.Warn("rbac sweep: API probe pods still terminating after a minute", "pods", left)
	}
}

// setup plants a canary in each reference tenant, starts in its namespace a
// pod with the tenant ServiceAccount's own token (mounting the canary), lets
// those pods reach the API server, and starts bulkhead's own API probe pods
// in the control namespace (ownPods). Only namespaces bulkhead created are
// touched: tenants bulkhead did not create get no canary and no pod here.
func (f *fixtureSet) setup(ctx context.Context, sw *Sweep, sc *Scope, lists []*metav1.APIResourceList) error {
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
		sw.canaryValues = append(sw.canaryValues, value)
		sw.Canaries = append(sw.Canaries, canary)
		sc.Canaries[t.Name] = canary

		if perr != nil {
			sw.Notes[""] = append(sw.Notes[""], "no in-pod requests: "+perr.Error())
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
	if err := f.ownPods(ctx, sc, suffix); err != nil {
		return err
	}
	return f.waitReady(ctx)
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

func serves(lists []*metav1.APIResourceList, groupVersion, resource string) bool {
	for _, l := range lists {
		if l.GroupVersion != groupVersion {
			continue
		}
		for _, r := range l.APIResources {
			if r.Name == resource {
				return true
			}
		}
	}
	return false
}

// fastConfig is a copy of cfg whose client-side rate limit does not
// serialise the sweep (concurrency is bounded by the sweep itself).
func fastConfig(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.QPS, c.Burst = 1000, 1000
	return c
}

// reviewKey identifies a SubjectAccessReview: attempts that ask the same
// question share one review.
func reviewKey(id checks.Identity, r Request) string {
	ra, nra := r.Attributes()
	b, _ := json.Marshal(struct {
		U   string
		G   []string
		RA  *authorizationv1.ResourceAttributes
		NRA *authorizationv1.NonResourceAttributes
	}{id.User, id.Groups, ra, nra})
	return string(b)
}

// runReviews asks a SubjectAccessReview for every attempt that wants one.
func runReviews(ctx context.Context, env *checks.Env, attempts []Attempt) ([]*Review, int) {
	out := make([]*Review, len(attempts))
	cs, err := kubernetes.NewForConfig(fastConfig(env.Kube.Config))
	byKey := map[string]*Review{}
	var keys []string
	first := map[string]int{}
	for i, a := range attempts {
		if !a.Review {
			continue
		}
		k := reviewKey(a.Identity, a.Req)
		if _, ok := byKey[k]; !ok {
			byKey[k] = &Review{}
			keys = append(keys, k)
			first[k] = i
		}
		out[i] = byKey[k]
	}
	if err != nil {
		for _, r := range byKey {
			r.Err = err.Error()
		}
		return out, len(keys)
	}
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for _, k := range keys {
		a := attempts[first[k]]
		rev := byKey[k]
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ra, nra := a.Req.Attributes()
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User: a.Identity.User, Groups: a.Identity.Groups, ResourceAttributes: ra, NonResourceAttributes: nra}}
			ctx, cancel := context.WithTimeout(ctx, requestTimeout)
			defer cancel()
			res, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
			if err != nil {
				rev.Err = err.Error()
				return
			}
			rev.Allowed, rev.Denied, rev.Reason, rev.EvaluationError = res.Status.Allowed, res.Status.Denied, res.Status.Reason, res.Status.EvaluationError
		}()
	}
	wg.Wait()
	return out, len(keys)
}

type realStats struct{ process, inPod, pods int }

// runReal makes every real request: from bulkhead's process (impersonating
// or as itself), and from inside the API probe pods, one exec per pod.
func runReal(ctx context.Context, env *checks.Env, sw *Sweep, sc Scope, attempts []Attempt) ([]*wire.APIResult, []string, realStats, error) {
	answers := make([]*wire.APIResult, len(attempts))
	pods := make([]string, len(attempts))
	var stats realStats
	byPod := map[string][]int{}
	var podOrder []string
	var process []int
	for i, a := range attempts {
		switch a.Via {
		case ViaPod, ViaAnonymous:
			pod := sc.AnonymousPod
			if a.Via == ViaPod {
				ns, _, _ := strings.Cut(a.Identity.ServiceAccount, "/")
				pod = ns + "/" + sc.TokenPods[a.Identity.ServiceAccount]
			}
			if _, ok := byPod[pod]; !ok {
				podOrder = append(podOrder, pod)
			}
			byPod[pod] = append(byPod[pod], i)
			pods[i] = pod
		case ViaImpersonation, ViaAdmin:
			process = append(process, i)
		}
	}
	stats.process, stats.pods = len(process), len(podOrder)
	for _, is := range byPod {
		stats.inPod += len(is)
	}

	clients := &processClients{env: env, http: map[string]*httpActor{}}
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, pod := range podOrder {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := runInPod(ctx, env, sw, &mu, pod, attempts, byPod[pod], answers)
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	sem := make(chan struct{}, parallel)
	for _, i := range process {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ans := clients.do(ctx, sw, &mu, attempts[i])
			answers[i] = &ans
		}()
	}
	wg.Wait()
	return answers, pods, stats, errors.Join(errs...)
}

// runInPod sends a pod's share of the attempts as one `probe api` batch.
func runInPod(ctx context.Context, env *checks.Env, sw *Sweep, mu *sync.Mutex, pod string, attempts []Attempt, idx []int, answers []*wire.APIResult) error {
	req := wire.APIRequest{TimeoutMS: int(requestTimeout / time.Millisecond), Parallel: parallel}
	for _, i := range idx {
		a := attempts[i]
		auth := a.Auth
		if a.Via == ViaPod {
			auth = wire.AuthToken
		}
		req.Calls = append(req.Calls, wire.APICall{ID: strconv.Itoa(i), Method: a.Req.Method, Path: a.Req.Path, Body: a.Req.Body,
			DryRun: a.Req.DryRun, Auth: auth, Headers: a.Req.Headers, Watch: a.Req.Watch})
	}
	ns, name, _ := strings.Cut(pod, "/")
	ctx, cancel := context.WithTimeout(ctx, execTimeout)
	defer cancel()
	resp, err := recordingRunner(env, sw, mu).API(ctx, probing.Pod{Namespace: ns, Name: name}, req)
	if err != nil {
		return err
	}
	mu.Lock()
	sw.PodTokens[pod] = resp.TokenMounted
	if !resp.TokenMounted {
		sw.Notes[IDAnonymous] = append(sw.Notes[IDAnonymous], fmt.Sprintf("pod %s has no ServiceAccount token mounted; TLS %s", pod, resp.TLS))
	}
	mu.Unlock()
	for _, r := range resp.Results {
		i, err := strconv.Atoi(r.ID)
		if err != nil || !slices.Contains(idx, i) {
			return fmt.Errorf("API probe in %s answered for unknown call %q", pod, r.ID)
		}
		answers[i] = &r
	}
	return nil
}

// recordingRunner is the env's probe runner, recording every raw output
// into sw.probeOutputs when it is the real exec (tests assert no secret
// value reaches bulkhead's process).
func recordingRunner(env *checks.Env, sw *Sweep, mu *sync.Mutex) probing.Runner {
	r := env.Prober()
	e, ok := r.(*probing.Exec)
	if !ok {
		return r
	}
	rec := *e
	rec.Timeout = execTimeout
	rec.Outputs = func(raw []byte) {
		mu.Lock()
		defer mu.Unlock()
		sw.probeOutputs = append(sw.probeOutputs, raw)
	}
	return &rec
}

// processClients make the requests of bulkhead's own process: one HTTP
// client per identity (impersonating it) and one as bulkhead itself.
type processClients struct {
	env  *checks.Env
	mu   sync.Mutex
	http map[string]*httpActor
}

type httpActor struct {
	client *http.Client
	base   string
	err    error
}

func (p *processClients) actor(a Attempt) *httpActor {
	// Both ways impersonate: the tenant's identity, or (ViaAdmin) the
	// synthetic PositiveControl identity.
	key := a.Identity.User + "\x00" + strings.Join(a.Identity.Groups, "\x00")
	p.mu.Lock()
	defer p.mu.Unlock()
	if h, ok := p.http[key]; ok {
		return h
	}
	cfg := fastConfig(p.env.Kube.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: a.Identity.User, Groups: a.Identity.Groups}
	h := &httpActor{}
	h.client, h.err = rest.HTTPClientFor(cfg)
	if h.err == nil {
		u, _, err := rest.DefaultServerUrlFor(cfg)
		if err != nil {
			h.err = err
		} else {
			h.base = strings.TrimSuffix(u.String(), "/")
		}
	}
	p.http[key] = h
	return h
}

// do makes one request from bulkhead's process.
func (p *processClients) do(ctx context.Context, sw *Sweep, mu *sync.Mutex, a Attempt) wire.APIResult {
	if err := harmless(a); err != nil {
		return wire.APIResult{ID: a.Req.Address(), Started: time.Now().UTC(), Error: err.Error()}
	}
	if a.Req.Exec != nil {
		return p.exec(ctx, sw, mu, a)
	}
	start := time.Now()
	res := wire.APIResult{ID: a.Req.Address(), Started: start.UTC()}
	defer func() { res.LatencyMS = float64(time.Since(start).Microseconds()) / 1000 }()
	h := p.actor(a)
	if h.err != nil {
		res.Error = "build client: " + h.err.Error()
		return res
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	path := a.Req.Path
	if a.Req.DryRun {
		if strings.Contains(path, "?") {
			path += "&dryRun=All"
		} else {
			path += "?dryRun=All"
		}
	}
	var body io.Reader
	if len(a.Req.Body) > 0 {
		body = bytes.NewReader(a.Req.Body)
	}
	req, err := http.NewRequestWithContext(ctx, a.Req.Method, h.base+path, body)
	if err != nil {
		res.Error = "build request: " + err.Error()
		return res
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		ct := "application/json"
		if a.Req.Method == http.MethodPatch {
			ct = "application/merge-patch+json"
		}
		req.Header.Set("Content-Type", ct)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer resp.Body.Close()
	res.Code = resp.StatusCode
	wire.ReadAnswer(ctx, &res, resp.Body, a.Req.Watch)
	return res
}

// harmless refuses a request as PositiveControl (system:masters) that could
// change anything: only reads and server-side dry-run writes are made as it,
// and through a proxy subresource only GET /healthz.
func harmless(a Attempt) error {
	if a.Via != ViaAdmin {
		return nil
	}
	switch {
	case a.Req.Exec != nil || len(a.Req.Headers) > 0:
		return fmt.Errorf("refused: %s as %s is an exec or carries headers", a.Req.Describe(), PositiveControl.User)
	case a.Req.Subresource == "proxy" && (a.Req.Method != http.MethodGet || !strings.HasSuffix(a.Req.Path, "/proxy/healthz")):
		return fmt.Errorf("refused: through a proxy %s only sends GET /healthz, not %s", PositiveControl.User, a.Req.Address())
	case a.Req.Method != http.MethodGet && !a.Req.DryRun:
		return fmt.Errorf("refused: %s as %s must be a server-side dry-run", a.Req.Address(), PositiveControl.User)
	}
	return nil
}

// exec runs a real exec stream into a probe container as the impersonated
// identity; the probe fingerprints the file the attempt names. A refusal
// comes back as the API server's Status, which becomes a 403 answer.
func (p *processClients) exec(ctx context.Context, sw *Sweep, mu *sync.Mutex, a Attempt) wire.APIResult {
	start := time.Now()
	res := wire.APIResult{ID: a.Req.Address(), Started: start.UTC()}
	defer func() { res.LatencyMS = float64(time.Since(start).Microseconds()) / 1000 }()
	c, err := p.env.Kube.Impersonate(a.Identity.User, a.Identity.Groups...)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	in, _ := json.Marshal(wire.APIRequest{Calls: []wire.APICall{}, Files: []string{a.Req.Exec.File}})
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	out, err := c.Exec(ctx, a.Req.Exec.Namespace, a.Req.Exec.Pod, checks.ProbeContainer, []string{"/probe", "api"}, in)
	mu.Lock()
	sw.probeOutputs = append(sw.probeOutputs, out)
	mu.Unlock()
	if err != nil {
		return execError(res, err)
	}
	var resp wire.APIResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		res.Code, res.Error = 200, "exec ran, but its output is not an API response"
		return res
	}
	res.Code, res.Kind = 200, "ExecStream"
	for _, f := range resp.Files {
		if f.Present && f.Fingerprint != "" {
			res.SecretValues = append(res.SecretValues, f.Fingerprint)
		}
	}
	return res
}

// execError turns an exec stream's failure into an answer: the API
// server's refusal (its Status message travels in the error) or no answer.
func execError(res wire.APIResult, err error) wire.APIResult {
	msg := err.Error()
	switch {
	case authzDenied.MatchString(msg):
		res.Code, res.Reason, res.Message = http.StatusForbidden, "Forbidden", wire.Truncate(msg, wire.MaxMessage)
	case strings.Contains(msg, "Unauthorized"):
		res.Code, res.Reason, res.Message = http.StatusUnauthorized, "Unauthorized", wire.Truncate(msg, wire.MaxMessage)
	default:
		res.Error = wire.Truncate(msg, wire.MaxMessage)
	}
	return res
}
