package suites

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// yamlMisreadNamespaces are namespace names YAML 1.1 reads as something
// else: y and on as the boolean true, 0123 as the number 83. The network
// policy test tools name their namespaces x, y and z.
var yamlMisreadNamespaces = []string{"y", "on", "0123"}

// namesConfig names the tenants as a user would write them: unquoted where
// YAML 1.2 reads the text (y, on), quoted where it would read a number.
const namesConfig = `apiVersion: bulkhead.dev/v1alpha1
kind: TenantConfig
tenants:
- name: y
  namespaces: [y]
- name: on
  namespaces: [on]
- name: "0123"
  namespaces: ["0123"]
probes:
  perNamespace: 2   # two per namespace, so that paths within a tenant are proven too
`

// namesTestLabel marks the namespaces this test creates (their names are
// fixed, so a leftover of an interrupted run is recognised and replaced).
const namesTestLabel = "bulkhead.dev/e2e-test"

// namesWantExit is what a run whose network checks all pass exits with.
const namesWantExit = 0

// TestCLINamesYAMLMisreads drives `bulkhead run --config` on tenants in
// namespaces literally named y, on and 0123, each set up by hand as a
// platform team would (default deny, traffic within the namespace and DNS
// allowed, Pod Security restricted): the run must set up, put its probe
// pods into those namespaces, pass the network checks and leave nothing.
// Before the config loader and the manifests were YAML-safe, y became
// "true" (no such namespace) and the probe Pod lost its namespace.
func TestCLINamesYAMLMisreads(t *testing.T) {
	f := features.New("bulkhead run on tenants in namespaces y, on and 0123").
		WithLabel(labelArea, "cli").
		Setup(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			for _, ns := range yamlMisreadNamespaces {
				createHandMadeTenant(ctx, t, ns)
			}
			return ctx
		}).
		Assess("the run sets up, probes every namespace, passes the network checks and leaves nothing", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			dir := t.TempDir()
			config := filepath.Join(dir, "tenants.yaml")
			require.NoError(t, os.WriteFile(config, []byte(namesConfig), 0o644))
			run := fixtures.NewRunID()
			args := []string{"run", "--kubeconfig", cfg.KubeconfigFile(), "--config", config, "--yes", "--run-id", run,
				"--probe-image", h.probe, "--report-dir", dir, "--areas", "network"}
			if c := h.target.Context; c != "" {
				args = append(args, "--context", c)
			}
			code, out := runCLI(t, args)
			assert.Equal(t, namesWantExit, code, "exit code:\n%s", withNotPassed(out))

			res, err := reports.ReadJSON(filepath.Join(dir, run, reports.ResultsFile))
			require.NoError(t, err, "the run's results")
			tenants := map[string][]string{}
			for _, tn := range res.Run.Tenants {
				tenants[tn.Name] = tn.Namespaces
			}
			for _, ns := range yamlMisreadNamespaces {
				assert.Equal(t, []string{ns}, tenants[ns], "tenant %s is the namespace %s, as written", ns, ns)
			}
			verdicts := map[string]reports.Verdict{}
			for _, c := range res.Checks {
				verdicts[c.ID] = c.Verdict
				assert.NotContains(t, []reports.Verdict{reports.Fail, reports.Error}, c.Verdict, "%s: %s", c.ID, c.Reason)
			}
			assert.Equal(t, reports.Pass, verdicts["NET-001"], "cross-tenant traffic is blocked")
			assert.Equal(t, reports.Pass, verdicts["NET-004"], "traffic within each tenant works")
			// The probe pods were in those namespaces: each reached its twin.
			probe := "bulkhead-probe-" + run + "-"
			for _, ns := range yamlMisreadNamespaces {
				proven := false
				for _, c := range res.Checks {
					for _, o := range c.Observations {
						if o.OK && o.Expected == "reachable" && o.Actor.Namespace == ns && o.Target.Namespace == ns && strings.HasPrefix(o.Actor.Pod, probe) {
							proven = true
						}
					}
				}
				assert.True(t, proven, "a probe pod in namespace %s reached another one there", ns)
			}

			assertRunLeftNothing(ctx, t, run, yamlMisreadNamespaces...)
			return ctx
		}).
		Assess("0123 unquoted is refused before anything is touched, naming file:line:column and field", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			dir := t.TempDir()
			config := filepath.Join(dir, "tenants.yaml")
			require.NoError(t, os.WriteFile(config, []byte(strings.Replace(namesConfig, `["0123"]`, `[0123]`, 1)), 0o644))
			run := fixtures.NewRunID()
			args := []string{"run", "--kubeconfig", cfg.KubeconfigFile(), "--config", config, "--yes", "--run-id", run,
				"--probe-image", h.probe, "--report-dir", dir, "--areas", "network"}
			code, out := runCLI(t, args)
			assert.Equal(t, 2, code, "a config bulkhead cannot read means it could not run")
			assert.Contains(t, out, config+`:9:16: tenants[2].namespaces[0]: 0123 is a number where a namespace name is expected; quote it ("0123")`)
			assertRunLeftNothing(ctx, t, run, yamlMisreadNamespaces...)
			return ctx
		}).Feature()
	testenv.Test(t, f)
}

// createHandMadeTenant creates namespace ns with default-deny, allow
// within the namespace and DNS egress, Pod Security restricted, and
// removes it when the test ends. A namespace of that name that this test
// did not make is left alone and fails the test.
func createHandMadeTenant(ctx context.Context, t *testing.T, ns string) {
	t.Helper()
	c := h.clients.Core
	if old, err := c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err == nil {
		require.Equal(t, "cli-names", old.Labels[namesTestLabel], "namespace %s exists and was not made by this test: not touching it", ns)
		require.NoError(t, client.IgnoreNotFound(c.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})), "remove leftover namespace %s", ns)
		waitNamespaceGone(ctx, t, ns)
	}
	_, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{
		namesTestLabel:                       "cli-names",
		"pod-security.kubernetes.io/enforce": "restricted",
	}}}, metav1.CreateOptions{})
	require.NoError(t, err, "create namespace %s", ns)
	t.Cleanup(func() {
		ctx := context.Background()
		assert.NoError(t, client.IgnoreNotFound(c.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})), "delete namespace %s", ns)
		waitNamespaceGone(ctx, t, ns)
	})
	all := []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}
	dns := func(p corev1.Protocol) networkingv1.NetworkPolicyPort {
		return networkingv1.NetworkPolicyPort{Protocol: ptr.To(p), Port: ptr.To(intstr.FromInt32(53))}
	}
	policies := []networkingv1.NetworkPolicy{
		{ObjectMeta: metav1.ObjectMeta{Name: "default-deny"}, Spec: networkingv1.NetworkPolicySpec{PolicyTypes: all}},
		{ObjectMeta: metav1.ObjectMeta{Name: "allow-own-namespace"}, Spec: networkingv1.NetworkPolicySpec{PolicyTypes: all,
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}}},
			Egress:  []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "allow-dns"}, Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{{
				To: []networkingv1.NetworkPolicyPeer{{
					NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "kube-system"}},
					PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns"}},
				}},
				Ports: []networkingv1.NetworkPolicyPort{dns(corev1.ProtocolUDP), dns(corev1.ProtocolTCP)},
			}}}},
	}
	for _, p := range policies {
		_, err := c.NetworkingV1().NetworkPolicies(ns).Create(ctx, &p, metav1.CreateOptions{})
		require.NoError(t, err, "create NetworkPolicy %s/%s", ns, p.Name)
	}
}

func waitNamespaceGone(ctx context.Context, t *testing.T, ns string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := h.clients.Core.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	assert.NoError(t, err, "namespace %s is still there", ns)
}
