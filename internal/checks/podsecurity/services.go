package podsecurity

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// ExternalIP is the address the externalIPs attempts use: TEST-NET-1
// (RFC 5737), never routed, so even an admitted Service would capture
// nothing real.
const ExternalIP = "192.0.2.10"

// ClusterDomain is assumed for fully qualified Service names.
const ClusterDomain = "cluster.local"

// attempt is one API request of a service check, retried until it matches
// its expectation or the enforcement deadline passes (an admission policy
// created with the run takes a moment to be in effect).
type attempt struct {
	Role     reports.Role
	Actor    reports.Actor
	Target   reports.Target
	Method   string
	Expected string
	// Do sends the request and returns the answer.
	Do func(ctx context.Context) answer
	// Judge turns the answer into the observed word and verdict.
	Judge func(answer) (string, bool)
}

// settle runs every attempt, then re-runs those that did not match until
// all match or env.Timing.Enforcement has passed; the last answer of each
// is its observation.
func settle(ctx context.Context, env *checks.Env, as []attempt) []reports.Observation {
	obs := make([]reports.Observation, len(as))
	pending := make([]int, len(as))
	for i := range as {
		pending[i] = i
	}
	deadline := time.Now().Add(env.Timing.Enforcement)
	for {
		parallel(len(pending), 16, func(k int) {
			i := pending[k]
			a := as[i]
			rctx, cancel := withTimeout(ctx)
			defer cancel()
			at := time.Now().UTC()
			ans := a.Do(rctx)
			word, ok := a.Judge(ans)
			obs[i] = reports.Observation{Role: a.Role, Actor: a.Actor, Target: a.Target, Method: a.Method,
				Expected: a.Expected, Observed: word, OK: ok, Detail: ans.Detail(), At: at, Attempts: obs[i].Attempts + 1}
		})
		var next []int
		for _, i := range pending {
			if !obs[i].OK {
				next = append(next, i)
			}
		}
		pending = next
		if len(pending) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return obs
		}
		select {
		case <-ctx.Done():
			return obs
		case <-time.After(time.Second):
		}
	}
}

func serviceLabels(env *checks.Env, tenant string) map[string]string {
	return fixtures.With(fixtures.CommonLabels(env.RunID), fixtures.LabelTenant, tenant, fixtures.LabelRole, "exposure-dry-run")
}

// service returns a Service of the given type in the actor's namespace.
func service(env *checks.Env, a actor, name string, typ corev1.ServiceType) *corev1.Service {
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

func createService(a actor, s *corev1.Service) func(context.Context) answer {
	return func(ctx context.Context) answer {
		_, err := a.Client.CoreV1().Services(a.Namespace).Create(ctx, s, dryRunCreate)
		return statusOf(err, 201)
	}
}

func patchService(a actor, name string, patch []byte) func(context.Context) answer {
	return func(ctx context.Context) answer {
		_, err := a.Client.CoreV1().Services(a.Namespace).Patch(ctx, name, types.MergePatchType, patch, dryRunPatch)
		return statusOf(err, 200)
	}
}

func judgeAdmitted(a answer) (string, bool) { return admittedWord(a), a.Admitted() }

// Mechanism names what rejected a request, from the API server's message.
type Mechanism string

const (
	ByQuota           Mechanism = "ResourceQuota"
	ByPolicy          Mechanism = "ValidatingAdmissionPolicy"
	ByWebhook         Mechanism = "admission webhook"
	ByExternalIPsPlug Mechanism = "DenyServiceExternalIPs admission plugin"
	ByRBAC            Mechanism = "RBAC"
	ByOther           Mechanism = ""
)

var policyRE = regexp.MustCompile(`ValidatingAdmissionPolicy '([^']+)' with binding '([^']+)'`)

// Classify says which mechanism rejected a request, and names the policy,
// webhook or quota when the message does.
func Classify(msg string) (Mechanism, string) {
	switch {
	case strings.Contains(msg, "exceeded quota"):
		name := ""
		if _, rest, ok := strings.Cut(msg, "exceeded quota: "); ok {
			name, _, _ = strings.Cut(rest, ",")
		}
		return ByQuota, name
	case policyRE.MatchString(msg):
		m := policyRE.FindStringSubmatch(msg)
		return ByPolicy, m[1] + " (binding " + m[2] + ")"
	case strings.Contains(msg, "ValidatingAdmissionPolicy"):
		return ByPolicy, ""
	case strings.Contains(msg, "admission webhook"):
		name := ""
		if _, rest, ok := strings.Cut(msg, `admission webhook "`); ok {
			name, _, _ = strings.Cut(rest, `"`)
		}
		return ByWebhook, name
	case strings.Contains(msg, "external IPs is denied by admission control"):
		return ByExternalIPsPlug, ""
	case strings.Contains(msg, "cannot create resource") || strings.Contains(msg, "cannot patch resource"):
		return ByRBAC, ""
	}
	return ByOther, ""
}

func mechanismWord(m Mechanism, name string) string {
	if name != "" {
		return "rejected by " + string(m) + " " + name
	}
	return "rejected by " + string(m)
}

// judgeNodePort accepts a rejection by the quota on one of resources (a
// LoadBalancer also asks for node ports) or by an admission policy or
// webhook, and records which.
func judgeQuotaOrPolicy(resources ...string) func(answer) (string, bool) {
	return func(a answer) (string, bool) {
		if !a.Rejected() {
			return admittedWord(a), false
		}
		m, name := Classify(a.Message)
		switch m {
		case ByQuota:
			for _, r := range resources {
				if strings.Contains(a.Message, r) {
					return mechanismWord(m, name) + " (" + r + ")", true
				}
			}
			return mechanismWord(m, name) + ", but not on " + strings.Join(resources, " or "), false
		case ByPolicy, ByWebhook:
			return mechanismWord(m, name), true
		}
		return fmt.Sprintf("rejected (%d) for another reason", a.Status), false
	}
}

// judgeAdmissionDenial accepts a rejection by an admission mechanism made
// for it (a policy, a webhook, the DenyServiceExternalIPs plugin).
func judgeAdmissionDenial(a answer) (string, bool) {
	if !a.Rejected() {
		return admittedWord(a), false
	}
	switch m, name := Classify(a.Message); m {
	case ByPolicy, ByWebhook, ByExternalIPsPlug:
		return mechanismWord(m, name), true
	}
	return fmt.Sprintf("rejected (%d) for another reason", a.Status), false
}

func serviceTarget(a actor, name string) reports.Target {
	return reports.Target{Tenant: a.Tenant, Namespace: a.Namespace, Name: name, Kind: "service"}
}

// clusterIPControl: the same identity may create an ordinary Service, so a
// rejection of the forbidden one is about what it asks for.
func clusterIPControl(env *checks.Env, a actor) attempt {
	name := "bulkhead-exp-clusterip"
	return attempt{Role: reports.RoleControl, Actor: a.reportActor(), Target: serviceTarget(a, name),
		Method: "dry-run create service (ClusterIP)", Expected: "admitted",
		Do: createService(a, service(env, a, name, corev1.ServiceTypeClusterIP)), Judge: judgeAdmitted}
}

// runNodePorts is EXP-001: tenants cannot create NodePort or LoadBalancer
// Services.
func runNodePorts(ctx context.Context, env *checks.Env) checks.Outcome {
	actors, err := tenantActors(env)
	if err != nil {
		return checks.Outcome{Err: err}
	}
	if len(actors) == 0 {
		return checks.Outcome{Skip: "no isolated tenant with an identity in this run"}
	}
	var as []attempt
	for _, a := range actors {
		np := "bulkhead-exp-nodeport"
		lb := "bulkhead-exp-loadbalancer"
		as = append(as,
			clusterIPControl(env, a),
			attempt{Role: reports.RoleTest, Actor: a.reportActor(), Target: serviceTarget(a, np),
				Method: "dry-run create service (NodePort)", Expected: "rejected by quota services.nodeports=0 or an admission policy",
				Do: createService(a, service(env, a, np, corev1.ServiceTypeNodePort)), Judge: judgeQuotaOrPolicy("services.nodeports")},
			attempt{Role: reports.RoleTest, Actor: a.reportActor(), Target: serviceTarget(a, lb),
				Method: "dry-run create service (LoadBalancer)", Expected: "rejected by quota services.loadbalancers=0 or an admission policy",
				Do: createService(a, service(env, a, lb, corev1.ServiceTypeLoadBalancer)), Judge: judgeQuotaOrPolicy("services.loadbalancers", "services.nodeports")},
		)
	}
	return checks.Outcome{Observations: settle(ctx, env, as)}
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
	actors, err := tenantActors(env)
	if err != nil {
		return checks.Outcome{Err: err}
	}
	if len(actors) == 0 {
		return checks.Outcome{Skip: "no isolated tenant with an identity in this run"}
	}
	var as []attempt
	expected := "rejected by an admission policy (externalIPs)"
	for _, a := range actors {
		name := "bulkhead-exp-external-ips"
		s := service(env, a, name, corev1.ServiceTypeClusterIP)
		s.Spec.ExternalIPs = []string{ExternalIP}
		as = append(as, clusterIPControl(env, a),
			attempt{Role: reports.RoleTest, Actor: a.reportActor(), Target: serviceTarget(a, name),
				Method: "dry-run create service (externalIPs " + ExternalIP + ")", Expected: expected,
				Do: createService(a, s), Judge: judgeAdmissionDenial})
		if own := probeServiceIn(env.Topology, a.Namespace); own != "" {
			add := []byte(`{"spec":{"externalIPs":["` + ExternalIP + `"]}}`)
			label := LabelPatch(map[string]any{"bulkhead.dev/exposure-control": env.RunID})
			as = append(as,
				attempt{Role: reports.RoleTest, Actor: a.reportActor(), Target: serviceTarget(a, own),
					Method: "dry-run patch service (add externalIPs " + ExternalIP + ")", Expected: expected,
					Do: patchService(a, own, add), Judge: judgeAdmissionDenial},
				attempt{Role: reports.RoleControl, Actor: a.reportActor(), Target: serviceTarget(a, own),
					Method: "dry-run patch service (labels)", Expected: "admitted",
					Do: patchService(a, own, label), Judge: judgeAdmitted})
		}
	}
	return checks.Outcome{Observations: settle(ctx, env, as)}
}

// runExternalName is EXP-003: a tenant cannot create an ExternalName
// Service that aliases another tenant's Service. Traffic from the tenant's
// own pods still meets NetworkPolicy (the name is only a DNS CNAME), but a
// shared proxy (an ingress controller, a gateway, a mesh) that follows the
// alias forwards the tenant's requests into the other tenant from its own
// namespace, past the other tenant's ingress policy.
func runExternalName(ctx context.Context, env *checks.Env) checks.Outcome {
	actors, err := tenantActors(env)
	if err != nil {
		return checks.Outcome{Err: err}
	}
	var as []attempt
	for _, a := range actors {
		own := probeServiceIn(env.Topology, a.Namespace)
		if own == "" {
			own = "bulkhead-probe"
		}
		ctrl := "bulkhead-exp-alias-own"
		s := service(env, a, ctrl, corev1.ServiceTypeExternalName)
		s.Spec.ExternalName = own + "." + a.Namespace + ".svc." + ClusterDomain
		as = append(as, attempt{Role: reports.RoleControl, Actor: a.reportActor(), Target: serviceTarget(a, ctrl),
			Method: "dry-run create service (ExternalName " + s.Spec.ExternalName + ")", Expected: "admitted",
			Do: createService(a, s), Judge: judgeAdmitted})
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
					t := serviceTarget(a, name)
					as = append(as, attempt{Role: reports.RoleTest, Actor: a.reportActor(), Target: t,
						Method:   "dry-run create service (ExternalName " + alias + ", tenant " + other.Name + ")",
						Expected: "rejected by an admission policy", Do: createService(a, s), Judge: judgeAdmissionDenial})
				}
			}
		}
	}
	if !hasTestAttempt(as) {
		return checks.Outcome{Skip: "fewer than two isolated tenants with identities in this run"}
	}
	return checks.Outcome{Observations: settle(ctx, env, as)}
}

func hasTestAttempt(as []attempt) bool {
	for _, a := range as {
		if a.Role == reports.RoleTest {
			return true
		}
	}
	return false
}
