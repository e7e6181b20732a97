package metadata

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/metadata/endpoints"
	"github.com/bulkhead-k8s/bulkhead/probes/wire"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// NegativeControls are the faults that must make the metadata checks
// fail, injected into the run's reference tenant b.
func NegativeControls() []checks.NegativeControl {
	return []checks.NegativeControl{
		{
			// b's general egress then covers the metadata addresses: both
			// checks fail naming b's pods and the endpoints they reached,
			// while tenant a (default deny, no internet egress) stays
			// blocked and the control still reaches the decoy.
			Fault:  "tenant b's internet egress loses its metadata except",
			Inject: removeExcept(fixtures.TenantB),
			Expect: []checks.Expectation{
				{Check: IDEndpoints, Names: func(env *checks.Env) []string {
					b := env.TenantNamespace(fixtures.TenantB)
					return []string{b + "/probe-0 -> 169.254.169.254:80 tcp-connect: reachable (want blocked",
						b + "/probe-0 -> http://169.254.169.254/latest/meta-data/ http GET: answered HTTP 200 (want blocked"}
				}, Assert: onlyTenantLeaks(fixtures.TenantB, true)},
				{Check: IDCredentials, Names: func(env *checks.Env) []string {
					return []string{env.TenantNamespace(fixtures.TenantB) + "/probe-0 -> http://169.254.169.254/latest/meta-data/iam/security-credentials/ http GET: credentials sha256:"}
				}, Assert: onlyTenantLeaks(fixtures.TenantB, false)},
			},
		},
	}
}

// onlyTenantLeaks: every leak is the tenant's, the control still reached
// the decoy, no evidence carries a credential value; with everyServed,
// the tenant reached every endpoint the decoy serves.
func onlyTenantLeaks(tenant string, everyServed bool) func(env *checks.Env, res reports.CheckResult) []string {
	return func(env *checks.Env, res reports.CheckResult) []string {
		var problems []string
		leaked := map[string]bool{}
		for _, o := range res.Observations {
			if strings.Contains(o.Detail, "BULKHEAD-DECOY-SECRET") {
				problems = append(problems, "evidence carries a credential value: "+checks.DescribeOne(o))
			}
			switch {
			case o.Role == reports.RoleControl && o.Failed():
				problems = append(problems, "a positive control failed (the control must still reach the decoy): "+checks.DescribeOne(o))
			case o.Leak() && o.Actor.Tenant != tenant:
				problems = append(problems, "only tenant "+tenant+" may leak: "+checks.DescribeOne(o))
			case o.Leak():
				leaked[o.Target.Address] = true
			}
		}
		if !everyServed {
			return problems
		}
		for _, e := range endpoints.All() {
			if e.Wire.Host != endpoints.LinkLocal && e.Wire.Host != endpoints.Alibaba {
				continue
			}
			if !leaked[RequestURL(e.Wire)] {
				problems = append(problems, fmt.Sprintf("tenant %s reached the decoy everywhere, yet %s (%s) is no leak", tenant, e.ID, RequestURL(e.Wire)))
			}
		}
		return problems
	}
}

const internetEgressPolicy = "allow-internet-egress"

// removeExcept drops the metadata addresses from the except lists of a
// tenant's internet-egress policy and waits until every pod of the tenant
// reaches the decoy; Restore puts the policy back and waits until every
// pod is blocked again. It needs the run's decoy: on a cluster bulkhead
// did not create there is nothing bulkhead may put there to leak to.
func removeExcept(tenant string) func(ctx context.Context, env *checks.Env) (checks.Restore, error) {
	return func(ctx context.Context, env *checks.Env) (checks.Restore, error) {
		live, d, err := PrepareLive(ctx, env)
		if err != nil {
			return nil, err
		}
		if live.Decoy == nil {
			return nil, errors.New("no live metadata endpoint to leak to: " + live.NoDecoy)
		}
		ns := env.TenantNamespace(tenant)
		nps := env.Kube.Core.NetworkingV1().NetworkPolicies(ns)
		orig, err := nps.Get(ctx, internetEgressPolicy, metav1.GetOptions{})
		if err != nil {
			return d.Cleanup, fmt.Errorf("tenant %s must run the internet-egress profile: %w", tenant, err)
		}
		if orig.Labels[fixtures.LabelRun] != env.RunID {
			return d.Cleanup, fmt.Errorf("%s/%s is not this run's: bulkhead changes only its own policies", ns, internetEgressPolicy)
		}
		leaky, removed := withoutMetadataExcepts(orig)
		if removed != len(endpoints.CIDRs()) {
			return d.Cleanup, fmt.Errorf("%s/%s excepts %d of the %d metadata addresses: not the reference policy", ns, internetEgressPolicy, removed, len(endpoints.CIDRs()))
		}
		pods := env.Topology.ProbesOf(tenant)
		restore := func(ctx context.Context) error {
			err := wait.PollUntilContextTimeout(ctx, time.Second, 30*time.Second, true, func(ctx context.Context) (bool, error) {
				cur, err := nps.Get(ctx, internetEgressPolicy, metav1.GetOptions{})
				if err != nil {
					return false, nil
				}
				cur.Spec = *orig.Spec.DeepCopy()
				_, err = nps.Update(ctx, cur, metav1.UpdateOptions{})
				return err == nil, nil
			})
			if err != nil {
				err = fmt.Errorf("restore %s/%s: %w", ns, internetEgressPolicy, err)
			} else {
				err = waitDecoy(ctx, env, live, pods, false)
			}
			return errors.Join(err, d.Cleanup(ctx))
		}
		if _, err := nps.Update(ctx, leaky, metav1.UpdateOptions{}); err != nil {
			return restore, fmt.Errorf("update %s/%s: %w", ns, internetEgressPolicy, err)
		}
		env.Logger().Info("negative control: removed the metadata addresses from an except list", "policy", ns+"/"+internetEgressPolicy, "cidrs", endpoints.CIDRs())
		// Policy is programmed per pod (per Cilium endpoint, node by node):
		// the fault is in effect once every pod of the tenant sees it.
		return restore, waitDecoy(ctx, env, live, pods, true)
	}
}

func withoutMetadataExcepts(np *networkingv1.NetworkPolicy) (*networkingv1.NetworkPolicy, int) {
	leaky := np.DeepCopy()
	cidrs := endpoints.CIDRs()
	removed := 0
	for i := range leaky.Spec.Egress {
		for j, peer := range leaky.Spec.Egress[i].To {
			if peer.IPBlock == nil {
				continue
			}
			kept := slices.DeleteFunc(slices.Clone(peer.IPBlock.Except), func(c string) bool { return slices.Contains(cidrs, c) })
			removed += len(peer.IPBlock.Except) - len(kept)
			leaky.Spec.Egress[i].To[j].IPBlock.Except = kept
		}
	}
	return leaky, removed
}

// waitDecoy polls until every pod gets (or no pod gets any longer) the
// decoy's answer at 169.254.169.254, or a minute passes.
func waitDecoy(ctx context.Context, env *checks.Env, live Live, pods []checks.ProbePod, reached bool) error {
	if len(pods) == 0 {
		return errors.New("no probe pods to wait for")
	}
	var last string
	err := wait.PollUntilContextTimeout(ctx, time.Second, time.Minute, true, func(ctx context.Context) (bool, error) {
		ss, err := ProbeOnce(ctx, env, live, pods)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		for _, s := range ss {
			r := s.Results["aws-imdsv1"]
			got := r.Connect == wire.Reachable
			var steps []string
			for _, ex := range r.Exchanges {
				steps = append(steps, ex.URL+" "+string(ex.Outcome))
				got = got || (ex.Outcome == wire.Reachable && ex.Decoy == live.Decoy.Marker)
			}
			if got != reached {
				last = s.Pod.Namespace + "/" + s.Pod.Name + ": connect " + string(r.Connect) + "; " + strings.Join(steps, "; ")
				return false, nil
			}
		}
		return len(ss) == len(pods), nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %d pods to reach the decoy=%v (last: %s): %w", len(pods), reached, last, err)
	}
	return nil
}
