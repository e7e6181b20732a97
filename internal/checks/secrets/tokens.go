package secrets

import (
	"context"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/apisweep"
	"github.com/bulkhead-k8s/bulkhead/probes/wire"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// Expected and observed words of SEC-003.
const (
	NoToken = "no token"
	Token   = "token"
)

// tokenHygiene (SEC-003) judges the cluster's state, whoever is listed as
// an identity: in every namespace of every isolated tenant, a pod that
// does not ask for a token (the namespace's default ServiceAccount,
// automountServiceAccountToken unset) is admitted without one (server-side
// dry-run: the ServiceAccount admission plugin adds the token volume
// before the answer comes back), and the tenants' running probe pods have
// none (seen from inside them). Each rests on a control: a pod that asks
// is admitted with a token in the same namespace, and bulkhead's API probe
// pods that asked see theirs from inside.
func tokenHygiene(ctx context.Context, env *checks.Env) checks.Outcome {
	out := checks.Outcome{Observations: append(defaultTokens(ctx, env), probePodTokens(ctx, env)...)}
	if !apisweep.HasTest(out.Observations) {
		return checks.Outcome{Skip: "no isolated tenant namespace in this run"}
	}
	sw, err := apisweep.Shared(ctx, env)
	if err != nil {
		return checks.Outcome{Err: fmt.Errorf("run the API sweep: %w", err)}
	}
	out.Observations = append(out.Observations, apiPodTokens(env.Topology, sw.Pods)...)
	return out
}

// askedKey is the fact that a pod asking for a token in ns gets one: the
// admission plugin that would add one unasked is at work there.
func askedKey(ns string) string { return "a pod that asks for a token is admitted with one in " + ns }

// seenKey is the fact that the probe sees a mounted token from inside a
// pod that has one.
const seenKey = "a pod with a mounted token sees it from inside (bulkhead's API probe pods)"

// defaultTokens are, for every namespace of every isolated tenant, a pod
// of the default ServiceAccount admitted without asking (the test) and
// asking (its control).
func defaultTokens(ctx context.Context, env *checks.Env) []reports.Observation {
	var out []reports.Observation
	for _, t := range env.Topology.Isolated() {
		for _, ns := range t.Namespaces {
			out = append(out,
				admittedToken(ctx, env, t, ns, "default", nil),
				admittedToken(ctx, env, t, ns, "default", ptr.To(true)))
		}
	}
	return out
}

// probePodTokens are the tenants' running probe pods, asked from inside
// whether a token is mounted.
func probePodTokens(ctx context.Context, env *checks.Env) []reports.Observation {
	var out []reports.Observation
	for _, t := range env.Topology.Isolated() {
		for _, p := range env.Topology.ProbesOf(t.Name) {
			out = append(out, probePodToken(ctx, env, t, p))
		}
	}
	return out
}

// apiPodTokens are the controls of the in-pod view: the API probe pods
// that asked for a token (a projected volume) have one, seen from inside
// them during the API sweep (in reference tenants, and in bulkhead's own
// control namespace, which every run has).
func apiPodTokens(top checks.Topology, pods map[string]apisweep.PodFacts) []reports.Observation {
	var out []reports.Observation
	for _, pod := range slices.Sorted(maps.Keys(pods)) {
		ns, name, _ := strings.Cut(pod, "/")
		if !strings.HasPrefix(name, "bulkhead-api-") {
			continue // the anonymous probe asked for none
		}
		tn, _ := top.TenantOfNamespace(ns)
		obs := tokenObservation(reports.RoleControl, Token, pods[pod].TokenMounted)
		obs.Actor = reports.Actor{Tenant: tn.Name, Namespace: ns, Pod: name}
		obs.Target = reports.Target{Tenant: tn.Name, Namespace: ns, Name: name, Kind: "pod", Address: path.Join(wire.ServiceAccountDir, "token")}
		obs.Method = "mounted ServiceAccount token (pod asks with a projected volume)"
		obs.Detail = "seen from inside the pod by `probe api` during the API sweep"
		obs.Proves = []string{seenKey}
		obs.At = time.Now().UTC()
		out = append(out, obs)
	}
	return out
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
		Method: "mounted ServiceAccount token", Needs: []string{seenKey}}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := env.Prober().API(ctx, p.Pod(), wire.APIRequest{Calls: []wire.APICall{}})
	if err != nil {
		obs.Observed, obs.Detail = "error", wire.Truncate(err.Error(), 300)
		obs.Status, obs.Why = reports.StatusUnproven, "the pod could not be asked: "+obs.Detail
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
	if role == reports.RoleTest {
		obs.Needs = []string{askedKey(ns)}
	} else {
		obs.Proves = []string{askedKey(ns)}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	pod, err := env.Kube.Core.CoreV1().Pods(ns).Create(ctx, dryRunPod(env, ns, sa, automount), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		// Refused (a quota at its bound, a policy): nothing is known about
		// the token.
		obs.Observed, obs.Detail = "error", wire.Truncate(err.Error(), 300)
		obs.Status, obs.Why = reports.StatusUnproven, "the dry-run pod was not admitted: "+obs.Detail
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
	if sa == "default" && role == reports.RoleTest && mounted {
		obs.Detail += "; the default ServiceAccount gives every pod that does not opt out a token (set automountServiceAccountToken: false on it; CIS 5.1.5, 5.1.6)"
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

func mustQuantity(s string) resource.Quantity { return resource.MustParse(s) }
