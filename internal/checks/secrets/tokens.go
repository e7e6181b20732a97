package secrets

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/rbac"
	"github.com/bulkhead-k8s/bulkhead/probes/wire"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// Expected and observed words of SEC-003.
const (
	NoToken = "no token"
	Token   = "token"
)

// tokenHygiene proves that pods only get a ServiceAccount token when they
// ask: the tenants' running probe pods have none (asked from inside them),
// and a pod created with a tenant ServiceAccount without asking is admitted
// without one (server-side dry-run: the ServiceAccount admission plugin
// adds the token volume before the answer comes back). A pod that asks is
// the positive control, as are the API probe pods that asked.
func tokenHygiene(ctx context.Context, env *checks.Env) checks.Outcome {
	var out checks.Outcome
	top := env.Topology
	for _, t := range top.Isolated() {
		for _, p := range top.ProbesOf(t.Name) {
			out.Observations = append(out.Observations, probePodToken(ctx, env, t, p))
		}
		withSA := false
		for _, id := range t.Identities {
			ns, sa, ok := strings.Cut(id.ServiceAccount, "/")
			if !ok {
				continue
			}
			withSA = true
			out.Observations = append(out.Observations,
				admittedToken(ctx, env, t, ns, sa, nil),
				admittedToken(ctx, env, t, ns, sa, ptr.To(true)))
		}
		if !withSA {
			// A tenant named without ServiceAccounts (bring-your-own): its
			// probe pods run as "default" in each namespace, and a pod
			// there that asks for a token must get one (dry-run: nothing
			// is created in the tenant's namespace).
			for _, ns := range t.Namespaces {
				out.Observations = append(out.Observations, admittedToken(ctx, env, t, ns, "default", ptr.To(true)))
			}
		}
	}
	if !hasTest(out.Observations) {
		return checks.Outcome{Skip: "no isolated tenant with probe pods or ServiceAccounts in this run"}
	}
	// The API probe pods asked for a token (a projected volume) and must
	// have one, seen from inside them: in reference tenants, and in
	// bulkhead's own control namespace (every run has one).
	sw, err := rbac.Shared(ctx, env)
	if err != nil {
		return checks.Outcome{Err: fmt.Errorf("run the API sweep: %w", err)}
	}
	pods := make([]string, 0, len(sw.PodTokens))
	for pod := range sw.PodTokens {
		pods = append(pods, pod)
	}
	sort.Strings(pods)
	for _, pod := range pods {
		ns, name, _ := strings.Cut(pod, "/")
		if !strings.HasPrefix(name, "bulkhead-api-") {
			continue // the anonymous probe asked for none
		}
		tn, _ := top.TenantOfNamespace(ns)
		obs := tokenObservation(reports.RoleControl, Token, sw.PodTokens[pod])
		obs.Actor = reports.Actor{Tenant: tn.Name, Namespace: ns, Pod: name}
		obs.Target = reports.Target{Tenant: tn.Name, Namespace: ns, Name: name, Kind: "pod", Address: path.Join(wire.ServiceAccountDir, "token")}
		obs.Method = "mounted ServiceAccount token (pod asks with a projected volume)"
		obs.Detail = "seen from inside the pod by `probe api` during the API sweep"
		obs.At = time.Now().UTC()
		out.Observations = append(out.Observations, obs)
	}
	out.Notes = append(out.Notes, defaultServiceAccounts(ctx, env)...)
	return out
}

func hasTest(obs []reports.Observation) bool {
	for _, o := range obs {
		if o.Role == reports.RoleTest {
			return true
		}
	}
	return false
}

func tokenObservation(role reports.Role, expected string, mounted bool) reports.Observation {
	observed := NoToken
	if mounted {
		observed = Token
	}
	return reports.Observation{Role: role, Expected: expected, Observed: observed, OK: observed == expected, Attempts: 1}
}

// probePodToken asks a running probe pod whether a token is mounted in it.
func probePodToken(ctx context.Context, env *checks.Env, t checks.Tenant, p checks.ProbePod) reports.Observation {
	obs := reports.Observation{Role: reports.RoleTest, Expected: NoToken, Attempts: 1, At: time.Now().UTC(),
		Actor:  reports.Actor{Tenant: t.Name, Namespace: p.Namespace, Pod: p.Name, Node: p.Node},
		Target: reports.Target{Tenant: t.Name, Namespace: p.Namespace, Name: p.Name, Kind: "pod", Address: path.Join(wire.ServiceAccountDir, "token")},
		Method: "mounted ServiceAccount token"}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := env.Prober().API(ctx, p.Pod(), wire.APIRequest{Calls: []wire.APICall{}})
	if err != nil {
		obs.Observed, obs.Detail = "error", wire.Truncate(err.Error(), 300)
		return obs
	}
	got := tokenObservation(reports.RoleTest, NoToken, resp.TokenMounted)
	obs.Observed, obs.OK = got.Observed, got.OK
	obs.Detail = "seen from inside the pod by `probe api`"
	return obs
}

// dryRunPod is a Pod Security "restricted" pod running as sa that asks for
// a token (automount true), says nothing (nil), or refuses one.
func dryRunPod(env *checks.Env, ns, sa string, automount *bool) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "bulkhead-token-" + env.RunID, Namespace: ns, Labels: fixtures.CommonLabels(env.RunID)},
		Spec: corev1.PodSpec{
			ServiceAccountName:           sa,
			AutomountServiceAccountToken: automount,
			SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			Containers: []corev1.Container{{
				Name: checks.ProbeContainer, Image: env.ProbeImage, Args: []string{"serve"},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: mustQuantity("5m"), corev1.ResourceMemory: mustQuantity("16Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceCPU: mustQuantity("100m"), corev1.ResourceMemory: mustQuantity("64Mi")},
				},
				SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
					RunAsNonRoot: ptr.To(true), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
			}},
		},
	}
}

// admittedToken creates (dry-run) a pod as ServiceAccount ns/sa, asking for
// a token or not, and looks at what admission made of it.
func admittedToken(ctx context.Context, env *checks.Env, t checks.Tenant, ns, sa string, automount *bool) reports.Observation {
	role, expected, how := reports.RoleTest, NoToken, "automountServiceAccountToken unset"
	if automount != nil && *automount {
		role, expected, how = reports.RoleControl, Token, "automountServiceAccountToken: true"
	}
	obs := reports.Observation{Role: role, Expected: expected, Attempts: 1, At: time.Now().UTC(),
		Actor:  reports.Actor{Tenant: t.Name, Namespace: ns, Identity: "system:serviceaccount:" + ns + ":" + sa},
		Target: reports.Target{Tenant: t.Name, Namespace: ns, Kind: "pods", Address: "POST /api/v1/namespaces/" + ns + "/pods?dryRun=All"},
		Method: "create pods (dry-run, " + how + ")"}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	pod, err := env.Kube.Core.CoreV1().Pods(ns).Create(ctx, dryRunPod(env, ns, sa, automount), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		obs.Observed, obs.Detail = "error", wire.Truncate(err.Error(), 300)
		return obs
	}
	vol, mounted := TokenVolume(pod)
	got := tokenObservation(role, expected, mounted)
	obs.Observed, obs.OK = got.Observed, got.OK
	obs.Detail = fmt.Sprintf("ServiceAccount %s/%s; as admitted (server-side dry-run by bulkhead's identity)", ns, sa)
	if mounted {
		obs.Detail += ": volume " + vol + " mounted at " + wire.ServiceAccountDir
	} else {
		obs.Detail += ": no ServiceAccount token volume"
	}
	return obs
}

// TokenVolume names the volume that gives pod a ServiceAccount token (a
// projected serviceAccountToken source, or a legacy token Secret) mounted
// into any container, if any.
func TokenVolume(pod *corev1.Pod) (string, bool) {
	tokenVolumes := map[string]bool{}
	for _, v := range pod.Spec.Volumes {
		switch {
		case v.Projected != nil:
			for _, s := range v.Projected.Sources {
				if s.ServiceAccountToken != nil {
					tokenVolumes[v.Name] = true
				}
			}
		case v.Secret != nil && strings.Contains(v.Secret.SecretName, "-token-"):
			tokenVolumes[v.Name] = true
		}
	}
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			for _, m := range c.VolumeMounts {
				if tokenVolumes[m.Name] {
					return m.Name, true
				}
			}
		}
	}
	return "", false
}

// defaultServiceAccounts reports the run's namespaces whose default
// ServiceAccount hands a token to every pod that does not opt out (CIS
// 5.1.5/5.1.6), as a dry-run pod there shows.
func defaultServiceAccounts(ctx context.Context, env *checks.Env) []string {
	var automounting, failed []string
	for _, t := range env.Topology.Tenants {
		for _, ns := range t.Namespaces {
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			pod, err := env.Kube.Core.CoreV1().Pods(ns).Create(ctx, dryRunPod(env, ns, "default", nil), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			cancel()
			if err != nil {
				failed = append(failed, ns+": "+wire.Truncate(err.Error(), 160))
				continue
			}
			if _, ok := TokenVolume(pod); ok {
				automounting = append(automounting, ns)
			}
		}
	}
	var notes []string
	if len(automounting) > 0 {
		notes = append(notes, "the default ServiceAccount gives every pod that does not opt out a token in namespaces: "+strings.Join(automounting, ", ")+
			" (set automountServiceAccountToken: false on it; CIS 5.1.5, 5.1.6)")
	} else {
		notes = append(notes, "no default ServiceAccount of the run's namespaces automounts a token")
	}
	if len(failed) > 0 {
		notes = append(notes, "default ServiceAccount not evaluated in: "+strings.Join(failed, "; "))
	}
	return notes
}

func mustQuantity(s string) resource.Quantity { return resource.MustParse(s) }
