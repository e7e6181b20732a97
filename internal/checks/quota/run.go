package quota

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/kube"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// Deadlines and bounds of the quota checks.
const (
	// statusWait bounds the wait for the quota controller to compute a
	// quota's status (before a check, and for usage to return after it).
	statusWait = 90 * time.Second
	// goneWait bounds the wait for created objects to be deleted.
	goneWait = 2 * time.Minute
	// maxFill bounds how many objects a check creates in a tenant's
	// namespace to reach a count bound.
	maxFill = 25
	// maxFillOwn bounds the same in bulkhead's own namespace (a copy of
	// the tenant's quota), where it costs the tenant nothing.
	maxFillOwn = 100
	// maxContainers bounds how many containers one overrun pod may have.
	maxContainers = 16
)

// nsRun is one check's work for one tenant namespace: who acts, what is
// expected, where objects are created, what was created (to delete), and
// the evidence.
type nsRun struct {
	env    *checks.Env
	tenant checks.Tenant
	// ns is where the run creates objects: the tenant namespace, or, for a
	// copy, bulkhead's own namespace carrying the tenant's quota.
	ns string
	// tenantNS is the tenant namespace the run is about.
	tenantNS string
	mode     fillMode
	exp      expectation
	build    builder
	// prefix makes this run's object names unique.
	prefix string
	// baseline is the namespace's quotas (with usage) before the check.
	baseline []corev1.ResourceQuota
	// where is added to the evidence of every observation (set in a copy).
	where string
	// copy is the run in bulkhead's namespace carrying the tenant's quota,
	// once made (see copy.go).
	copy *nsRun
	// tokens are the ServiceAccounts' clients with their own tokens.
	tokens map[string]*kube.Clients

	// mu guards created, filledSince and obs for concurrent creates.
	mu      sync.Mutex
	created []createdObj
	// filledSince is when the run first created, in a user's tenant
	// namespace, an object its quota counts (zero: none there now).
	filledSince time.Time

	obs          []reports.Observation
	notes        []string
	notEvaluated []string
}

type createdObj struct {
	gvr  schema.GroupVersionResource
	name string
}

// inTenants runs fn in every namespace of every isolated tenant, tenants in
// parallel, and deletes what fn created (also when fn fails or the context
// is cancelled), waiting until the namespace's quota usage is back where it
// was. A tenant without identities is not evaluated.
func inTenants(ctx context.Context, env *checks.Env, check string, fn func(ctx context.Context, r *nsRun) error) checks.Outcome {
	type job struct {
		t  checks.Tenant
		ns string
	}
	var (
		jobs []job
		out  checks.Outcome
	)
	tenants := env.Topology.Isolated()
	for _, t := range tenants {
		if len(t.Identities) == 0 {
			out.NotEvaluated = append(out.NotEvaluated, fmt.Sprintf("tenant %s: no identities in the config", t.Name))
			continue
		}
		for _, ns := range t.Namespaces {
			jobs = append(jobs, job{t, ns})
		}
	}
	switch {
	case len(tenants) == 0:
		return checks.Outcome{Skip: "no isolated tenant in this run"}
	case len(jobs) == 0:
		return checks.Outcome{Skip: "not evaluated: " + strings.Join(out.NotEvaluated, "; ")}
	}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for _, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := newRun(ctx, env, j.t, j.ns, check)
			if err == nil {
				err = fn(ctx, r)
				if cerr := r.cleanup(context.WithoutCancel(ctx)); cerr != nil {
					err = errors.Join(err, cerr)
				}
				if derr := r.dropCopy(context.WithoutCancel(ctx)); derr != nil {
					err = errors.Join(err, derr)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if r != nil {
				for _, x := range []*nsRun{r, r.copy} {
					if x != nil {
						out.Observations = append(out.Observations, x.obs...)
						out.Notes = append(out.Notes, x.notes...)
						out.NotEvaluated = append(out.NotEvaluated, x.notEvaluated...)
					}
				}
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("namespace %s: %w", j.ns, err))
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		out.Err = errors.Join(errs...)
	}
	out.Notes = append(out.Notes, identitiesNote)
	return out
}

// identitiesNote says how the checks act; the quota admission plugin
// evaluates server-side dry-runs like any request and only skips recording
// their usage (k8s.io/apiserver v0.36.3,
// pkg/admission/plugin/resourcequota/controller.go, checkQuotas: checkRequest
// runs for every request, then "Don't update quota for admissionAttributes
// that correspond to dry-run requests"), so a dry-run over the bound is
// refused exactly as the real request would be.
const identitiesNote = "acted as each tenant identity that may make the request (asked with SubjectAccessReviews; the others are not applicable): users impersonated with their groups, ServiceAccounts with their own token (TokenRequest API, 10 min); " +
	"over-quota attempts are server-side dry-runs, which quota admission evaluates like real requests but never records; " +
	"pods created for real to fill a quota can never run (a node label no node has, a scheduling gate, a command that exits at once), and claims name a StorageClass that does not exist, so they count against the quota but never run or get a volume"

func newRun(ctx context.Context, env *checks.Env, t checks.Tenant, ns, check string) (*nsRun, error) {
	exp, err := expectationFor(env, t, ns)
	if err != nil {
		return nil, err
	}
	r := &nsRun{env: env, tenant: t, ns: ns, tenantNS: ns, mode: modeFor(env, t), exp: exp,
		build:  builder{runID: env.RunID, tenant: t.Name, ns: ns, image: env.ProbeImage},
		prefix: "bhq-" + strings.ToLower(check) + "-" + fixtures.NewRunID()}
	// Admission refuses everything a quota matches until its status is
	// computed; wait for it, then remember the usage to restore.
	r.baseline, err = r.currentQuotas(ctx)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// currentQuotas waits until every ResourceQuota of the namespace has its
// status computed for its spec, and returns them.
func (r *nsRun) currentQuotas(ctx context.Context) ([]corev1.ResourceQuota, error) {
	var items []corev1.ResourceQuota
	var pending []string
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, statusWait, true, func(ctx context.Context) (bool, error) {
		list, err := r.env.Kube.Core.CoreV1().ResourceQuotas(r.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			pending = []string{"list: " + err.Error()}
			return false, nil
		}
		items, pending = list.Items, nil
		for _, q := range items {
			if !statusCurrent(q) {
				pending = append(pending, q.Name)
			}
		}
		return len(pending) == 0, nil
	})
	if err != nil {
		return nil, fmt.Errorf("waiting %s for the quota status of namespace %s to be computed: %s", statusWait, r.ns, strings.Join(pending, ", "))
	}
	return items, nil
}

func (r *nsRun) limitRanges(ctx context.Context) ([]corev1.LimitRange, error) {
	list, err := r.env.Kube.Core.CoreV1().LimitRanges(r.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list LimitRanges in %s: %w", r.ns, err)
	}
	return list.Items, nil
}

// limit reads the namespace's current limit on res.
func (r *nsRun) limit(ctx context.Context, res corev1.ResourceName) (limit, []string, error) {
	qs, err := r.currentQuotas(ctx)
	if err != nil {
		return limit{}, nil, err
	}
	return limitOf(res, qs, r.exp.Hard), quotaNames(qs), nil
}

// name returns a unique object name for this run: "bhq-quota-001-k3x9q-pods-3".
func (r *nsRun) name(parts ...string) string {
	return r.prefix + "-" + strings.Join(parts, "-")
}

// create creates obj as actor a; dry-run requests are evaluated by
// admission (quota included) but never persisted. A real object must be
// one whose pods can never run; it is recorded for clean-up.
func (r *nsRun) create(ctx context.Context, a actor, gvr schema.GroupVersionResource, obj *unstructured.Unstructured, dryRun bool) (*unstructured.Unstructured, error) {
	opts := metav1.CreateOptions{FieldManager: fixtures.ManagedBy}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	} else if err := mustBeInert(obj); err != nil {
		return nil, err
	}
	got, err := a.clients.Dynamic.Resource(gvr).Namespace(r.ns).Create(ctx, obj, opts)
	if err == nil && !dryRun {
		r.mu.Lock()
		defer r.mu.Unlock()
		if len(r.created) == 0 && r.ns == r.tenantNS {
			r.filledSince = time.Now()
		}
		r.created = append(r.created, createdObj{gvr: gvr, name: obj.GetName()})
	}
	return got, err
}

// attempt is what one observation tried: its role, how, on what, the
// expected outcome, and its proof keys.
type attempt struct {
	role     reports.Role
	method   string
	gvr      schema.GroupVersionResource
	name     string
	expected string
	// needs (tests) and proves (controls): see checks.Judge.
	needs, proves []string
}

// record adds one observation of actor a: the attempt and its answer. An
// inconclusive answer makes a test unproven, saying why.
func (r *nsRun) record(a actor, at attempt, ans answer) {
	o := reports.Observation{
		Role:     at.role,
		Actor:    reports.Actor{Tenant: r.tenant.Name, Namespace: r.ns, Identity: a.name()},
		Target:   reports.Target{Tenant: r.tenant.Name, Namespace: r.ns, Name: at.name, Kind: kindOf(at.gvr), Address: apiPath(at.gvr, r.ns)},
		Method:   at.method,
		Expected: at.expected,
		Observed: ans.Observed,
		OK:       ans.OK,
		Detail:   join(ans.Detail, r.where),
		Needs:    at.needs,
		Proves:   at.proves,
		At:       time.Now().UTC(),
	}
	if at.role == reports.RoleTest && ans.Inconclusive != "" {
		o.Status, o.Why = reports.StatusUnproven, ans.Inconclusive
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.obs = append(r.obs, o)
}

// reader is bulkhead reading the namespace: the actor of the observations
// about what it found there.
var reader = actor{id: checks.Identity{User: "bulkhead"}, how: "reading the namespace"}

// fail records a test that failed on what bulkhead read, with why.
func (r *nsRun) fail(at attempt, observed, detail string) {
	r.record(reader, at, answer{Observed: observed, Detail: detail})
}

// unproven records a test that could not be tried, with why.
func (r *nsRun) unproven(at attempt, observed, why string) {
	r.record(reader, at, answer{Observed: observed, Detail: why, Inconclusive: why})
}

func kindOf(gvr schema.GroupVersionResource) string {
	if k, ok := kinds[gvr]; ok {
		return k
	}
	return gvr.Resource
}

var kinds = map[schema.GroupVersionResource]string{
	gvrPods: "pod", gvrServices: "service", gvrSecrets: "secret", gvrConfigMaps: "configmap",
	gvrPVCs: "persistentvolumeclaim", gvrDeployments: "deployment", gvrQuotas: "resourcequota", gvrLimitRanges: "limitrange",
}

// deleteNow deletes one object the run created and waits until it is gone.
func (r *nsRun) deleteNow(ctx context.Context, gvr schema.GroupVersionResource, name string) error {
	ri := r.env.Kube.Dynamic.Resource(gvr).Namespace(r.ns)
	err := ri.Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: ptrTo[int64](0)})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete %s %s/%s: %w", gvr.Resource, r.ns, name, err)
	}
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, goneWait, true, func(ctx context.Context) (bool, error) {
		_, err := ri.Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		return fmt.Errorf("%s %s/%s still exists after %s", gvr.Resource, r.ns, name, goneWait)
	}
	return nil
}

// cleanup deletes everything this run (and its copy) created, waits until
// it is gone and until the namespace's quota usage is back at its
// baseline. It may run more than once (a check that needs the quota back
// mid-way calls it).
func (r *nsRun) cleanup(ctx context.Context) error {
	var errs []error
	if r.copy != nil {
		errs = append(errs, r.copy.cleanup(ctx))
	}
	if len(r.created) == 0 {
		return errors.Join(errs...)
	}
	fg := metav1.DeletePropagationForeground
	for _, o := range r.created {
		err := r.env.Kube.Dynamic.Resource(o.gvr).Namespace(r.ns).Delete(ctx, o.name,
			metav1.DeleteOptions{PropagationPolicy: &fg, GracePeriodSeconds: ptrTo[int64](0)})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete %s %s/%s: %w", o.gvr.Resource, r.ns, o.name, err))
		}
	}
	var left []string
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, goneWait, true, func(ctx context.Context) (bool, error) {
		left = left[:0]
		for _, o := range r.created {
			_, err := r.env.Kube.Dynamic.Resource(o.gvr).Namespace(r.ns).Get(ctx, o.name, metav1.GetOptions{})
			if !apierrors.IsNotFound(err) {
				left = append(left, o.gvr.Resource+"/"+o.name)
			}
		}
		return len(left) == 0, nil
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("objects the check created still exist after %s: %s", goneWait, strings.Join(left, ", ")))
		return errors.Join(errs...)
	}
	r.created = nil
	r.noteHeld()
	if r.ns != r.tenantNS {
		// A copy is bulkhead's own and goes with the check: nobody else
		// will read its usage, and the next fill there reads its own.
		return errors.Join(errs...)
	}
	var changed []string
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, statusWait, true, func(ctx context.Context) (bool, error) {
		list, err := r.env.Kube.Core.CoreV1().ResourceQuotas(r.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		changed = usageChanges(r.baseline, list.Items)
		return len(changed) == 0, nil
	})
	if err != nil {
		r.notes = append(r.notes, fmt.Sprintf("%s: quota usage not back at its value before the check after %s: %s", r.ns, statusWait, strings.Join(changed, "; ")))
	}
	return errors.Join(errs...)
}
