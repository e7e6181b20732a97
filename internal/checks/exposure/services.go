package exposure

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/actors"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/tenantapi"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// ExternalIP is the address the externalIPs attempts use: TEST-NET-1
// (RFC 5737), never routed, so even an admitted Service would capture
// nothing real.
const ExternalIP = "192.0.2.10"

// ClusterDomain is assumed for fully qualified Service names.
const ClusterDomain = "cluster.local"

func serviceLabels(env *checks.Env, tenant string) map[string]string {
	return fixtures.With(fixtures.CommonLabels(env.RunID), fixtures.LabelTenant, tenant, fixtures.LabelRole, "exposure-dry-run")
}

// service returns a Service of the given type in the actor's namespace.
func service(env *checks.Env, a actors.Actor, name string, typ corev1.ServiceType) *corev1.Service {
	s := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Namespace: a.Namespace, Name: name, Labels: serviceLabels(env, a.Tenant)},
		Spec: corev1.ServiceSpec{Type: typ,
			Selector: map[string]string{"bulkhead.dev/exposure": name},
			Ports:    []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	if typ == corev1.ServiceTypeExternalName {
		s.Spec.Selector, s.Spec.Ports = nil, nil
	}
	return s
}

func createService(a actors.Actor, s *corev1.Service) func(context.Context) tenantapi.Answer {
	return func(ctx context.Context) tenantapi.Answer {
		_, err := a.Clients.Core.CoreV1().Services(a.Namespace).Create(ctx, s, tenantapi.DryRunCreate)
		return tenantapi.Of(err, 201)
	}
}

func patchService(a actors.Actor, name string, patch []byte) func(context.Context) tenantapi.Answer {
	return func(ctx context.Context) tenantapi.Answer {
		_, err := a.Clients.Core.CoreV1().Services(a.Namespace).Patch(ctx, name, types.MergePatchType, patch, tenantapi.DryRunPatch)
		return tenantapi.Of(err, 200)
	}
}

// judgeQuotaOrPolicy accepts a rejection by the quota on one of resources
// (a LoadBalancer that allocates node ports also asks for them) or by an
// admission policy or webhook, and records which. An admission is a leak;
// any other refusal proves nothing about exposure.
func judgeQuotaOrPolicy(resources ...string) func(tenantapi.Answer) tenantapi.Judged {
	return func(a tenantapi.Answer) tenantapi.Judged {
		if a.Rejected() {
			m, name := tenantapi.Classify(a.Message)
			switch m {
			case tenantapi.ByQuota:
				for _, r := range resources {
					if strings.Contains(a.Message, r) {
						return tenantapi.Judged{Observed: "rejected by " + tenantapi.MechanismWord(m, name) + " (" + r + ")", OK: true}
					}
				}
				return tenantapi.Judged{Observed: "rejected by " + tenantapi.MechanismWord(m, name) + ", but not on " + strings.Join(resources, " or "),
					Inconclusive: "a quota on another resource proves nothing about " + strings.Join(resources, " or ")}
			case tenantapi.ByPolicy, tenantapi.ByWebhook:
				return tenantapi.Judged{Observed: "rejected by " + tenantapi.MechanismWord(m, name), OK: true}
			}
		}
		return tenantapi.Inconclusive(a, "not a refusal by a quota on "+strings.Join(resources, " or ")+" or an admission policy")
	}
}

// judgeAdmissionDenial accepts a rejection by an admission mechanism made
// for it (a policy, a webhook, the DenyServiceExternalIPs plugin).
func judgeAdmissionDenial(a tenantapi.Answer) tenantapi.Judged {
	if a.Rejected() {
		switch m, name := tenantapi.Classify(a.Message); m {
		case tenantapi.ByPolicy, tenantapi.ByWebhook, tenantapi.ByExternalIPsPlug:
			return tenantapi.Judged{Observed: "rejected by " + tenantapi.MechanismWord(m, name), OK: true}
		}
	}
	return tenantapi.Inconclusive(a, "not a refusal by an admission policy")
}

func serviceTarget(a actors.Actor, name string) reports.Target {
	return reports.Target{Tenant: a.Tenant, Namespace: a.Namespace, Name: name, Kind: "service"}
}

// mayCreateKey: the identity was shown, in the same round, to create an
// ordinary Service there, so a refusal of the forbidden one is about what
// it asks for.
func mayCreateKey(a actors.Actor) string {
	return fmt.Sprintf("%s may create a ClusterIP Service in %s", a.Identity, a.Namespace)
}

func clusterIPControl(env *checks.Env, t checks.Tenant, a actors.Actor) attempt {
	name := "bulkhead-exp-clusterip"
	return attempt{Tenant: t, Actor: a, Role: reports.RoleControl, Target: serviceTarget(a, name),
		Method: "dry-run create service (ClusterIP)", Expected: "admitted",
		Do: createService(a, service(env, a, name, corev1.ServiceTypeClusterIP)), Judge: tenantapi.JudgeAdmitted,
		Proves: []string{mayCreateKey(a)}}
}

// builder returns the attempts of one identity in one tenant namespace, and
// observations of its own (what the identity may not try).
type builder func(ctx context.Context, t checks.Tenant, a actors.Actor) ([]attempt, []reports.Observation, error)

// serviceCheck runs the attempts build returns for every identity that may
// create Services, in every tenant namespace.
func serviceCheck(ctx context.Context, env *checks.Env, build builder) checks.Outcome {
	cov, err := actors.Of(env).EachNamespace(ctx, actors.Create("services"))
	if err != nil {
		return checks.Outcome{Err: err}
	}
	if out, nobody := tenantapi.NobodyMayTry(cov); nobody {
		return out
	}
	var as []attempt
	var extra []reports.Observation
	for _, s := range cov.Scopes {
		for _, a := range s.Actors {
			more, na, err := build(ctx, s.Tenant, a)
			if err != nil {
				return checks.Outcome{Err: err}
			}
			as, extra = append(as, more...), append(extra, na...)
		}
	}
	obs, notes, err := runAttempts(ctx, env, as)
	if err != nil {
		return checks.Outcome{Err: err}
	}
	out := checks.Outcome{Observations: append(obs, extra...), Notes: notes}
	cov.Apply(&out)
	return out
}

// runNodePorts is EXP-001: tenants cannot create NodePort or LoadBalancer
// Services, nor a LoadBalancer without node ports (which a quota on node
// ports alone does not stop).
func runNodePorts(ctx context.Context, env *checks.Env) checks.Outcome {
	return serviceCheck(ctx, env, func(_ context.Context, t checks.Tenant, a actors.Actor) ([]attempt, []reports.Observation, error) {
		np := service(env, a, "bulkhead-exp-nodeport", corev1.ServiceTypeNodePort)
		lb := service(env, a, "bulkhead-exp-loadbalancer", corev1.ServiceTypeLoadBalancer)
		direct := service(env, a, "bulkhead-exp-loadbalancer-direct", corev1.ServiceTypeLoadBalancer)
		direct.Spec.AllocateLoadBalancerNodePorts = ptr.To(false)
		test := func(s *corev1.Service, method, expected string, resources ...string) attempt {
			return attempt{Tenant: t, Actor: a, Role: reports.RoleTest, Target: serviceTarget(a, s.Name),
				Method: method, Expected: expected, Do: createService(a, s), Judge: judgeQuotaOrPolicy(resources...),
				Needs: []string{mayCreateKey(a)}}
		}
		return []attempt{
			clusterIPControl(env, t, a),
			test(np, "dry-run create service (NodePort)", "rejected by quota services.nodeports=0 or an admission policy", "services.nodeports"),
			test(lb, "dry-run create service (LoadBalancer)", "rejected by quota services.loadbalancers=0 or an admission policy",
				"services.loadbalancers", "services.nodeports"),
			test(direct, "dry-run create service (LoadBalancer, allocateLoadBalancerNodePorts=false)",
				"rejected by quota services.loadbalancers=0 or an admission policy (no node port is asked for)", "services.loadbalancers"),
		}, nil, nil
	})
}

// probeServiceIn returns the name of a probe Service in ns, if the run has one.
func probeServiceIn(top checks.Topology, ns string) string {
	for _, p := range top.Probes {
		if p.Namespace == ns && p.Service != "" {
			return p.Service
		}
	}
	return ""
}

// runExternalIPs is EXP-002: tenants cannot set spec.externalIPs, on a new
// Service or by updating one they own (CVE-2020-8554: a Service with
// externalIPs intercepts traffic to those IPs from every pod and node).
func runExternalIPs(ctx context.Context, env *checks.Env) checks.Outcome {
	return serviceCheck(ctx, env, func(ctx context.Context, t checks.Tenant, a actors.Actor) ([]attempt, []reports.Observation, error) {
		expected := "rejected by an admission policy (externalIPs)"
		name := "bulkhead-exp-external-ips"
		s := service(env, a, name, corev1.ServiceTypeClusterIP)
		s.Spec.ExternalIPs = []string{ExternalIP}
		as := []attempt{clusterIPControl(env, t, a),
			{Tenant: t, Actor: a, Role: reports.RoleTest, Target: serviceTarget(a, name),
				Method: "dry-run create service (externalIPs " + ExternalIP + ")", Expected: expected,
				Do: createService(a, s), Judge: judgeAdmissionDenial, Needs: []string{mayCreateKey(a)}}}
		own := probeServiceIn(env.Topology, a.Namespace)
		if own == "" {
			return as, nil, nil
		}
		// Updating a Service in its namespace: only an identity that may
		// patch Services may try.
		switch d := actors.Of(env).May(ctx, a.Identity, a.Namespace, actors.Patch("services")); {
		case d.Err != nil:
			return nil, nil, d.Err
		case !d.Allowed:
			return as, []reports.Observation{actors.NotApplicable(a.Tenant, a.Namespace, a.Identity, actors.Patch("services"), d.Reason)}, nil
		}
		key := fmt.Sprintf("%s may patch Service %s/%s", a.Identity, a.Namespace, own)
		add := []byte(`{"spec":{"externalIPs":["` + ExternalIP + `"]}}`)
		label := tenantapi.LabelPatch(map[string]any{"bulkhead.dev/exposure-control": env.RunID})
		return append(as,
			attempt{Tenant: t, Actor: a, Role: reports.RoleTest, Target: serviceTarget(a, own),
				Method: "dry-run patch service (add externalIPs " + ExternalIP + ")", Expected: expected,
				Do: patchService(a, own, add), Judge: judgeAdmissionDenial, Needs: []string{key}},
			attempt{Tenant: t, Actor: a, Role: reports.RoleControl, Target: serviceTarget(a, own),
				Method: "dry-run patch service (labels)", Expected: "admitted",
				Do: patchService(a, own, label), Judge: tenantapi.JudgeAdmitted, Proves: []string{key}}), nil, nil
	})
}

// runExternalName is EXP-003: a tenant cannot create an ExternalName
// Service that aliases another tenant's Service. Traffic from the tenant's
// own pods still meets NetworkPolicy (the name is only a DNS CNAME), but a
// shared proxy (an ingress controller, a gateway, a mesh) that follows the
// alias forwards the tenant's requests into the other tenant from its own
// namespace, past the other tenant's ingress policy (CVE-2021-25740).
func runExternalName(ctx context.Context, env *checks.Env) checks.Outcome {
	if len(env.Topology.Isolated()) < 2 {
		return checks.Outcome{Skip: "fewer than two isolated tenants in this run"}
	}
	return serviceCheck(ctx, env, func(_ context.Context, t checks.Tenant, a actors.Actor) ([]attempt, []reports.Observation, error) {
		own := probeServiceIn(env.Topology, a.Namespace)
		if own == "" {
			own = "bulkhead-probe"
		}
		ctrl := "bulkhead-exp-alias-own"
		s := service(env, a, ctrl, corev1.ServiceTypeExternalName)
		s.Spec.ExternalName = own + "." + a.Namespace + ".svc." + ClusterDomain
		key := fmt.Sprintf("%s may alias its own Service in %s", a.Identity, a.Namespace)
		as := []attempt{{Tenant: t, Actor: a, Role: reports.RoleControl, Target: serviceTarget(a, ctrl),
			Method: "dry-run create service (ExternalName " + s.Spec.ExternalName + ")", Expected: "admitted",
			Do: createService(a, s), Judge: tenantapi.JudgeAdmitted, Proves: []string{key}}}
		for _, other := range env.Topology.Isolated() {
			if other.Name == a.Tenant {
				continue
			}
			for _, ns := range other.Namespaces {
				svc := probeServiceIn(env.Topology, ns)
				if svc == "" {
					svc = "bulkhead-probe"
				}
				for i, alias := range []string{svc + "." + ns + ".svc." + ClusterDomain, svc + "." + ns + ".svc"} {
					name := fmt.Sprintf("bulkhead-exp-alias-%s-%d", other.Name, i)
					if len(name) > 63 {
						name = fmt.Sprintf("bulkhead-exp-alias-%d", i)
					}
					s := service(env, a, name, corev1.ServiceTypeExternalName)
					s.Spec.ExternalName = alias
					as = append(as, attempt{Tenant: t, Actor: a, Role: reports.RoleTest, Target: serviceTarget(a, name),
						Method:   "dry-run create service (ExternalName " + alias + ", tenant " + other.Name + ")",
						Expected: "rejected by an admission policy", Do: createService(a, s), Judge: judgeAdmissionDenial,
						Needs: []string{key}})
				}
			}
		}
		return as, nil, nil
	})
}
