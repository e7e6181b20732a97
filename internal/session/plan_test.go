package session

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/config"
	"github.com/bulkhead-k8s/bulkhead/internal/kube"
)

func planOptions(t *testing.T, byo *config.File, nss ...string) Options {
	t.Helper()
	cs := fake.NewClientset()
	for _, n := range nss {
		_, err := cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	return Options{Clients: &kube.Clients{Core: cs, Config: &rest.Config{}}, RunID: "k3x9q", ProbeImage: "probe:dev", BYO: byo}
}

func byoConfig(services bool) *config.File {
	return &config.File{
		Tenants: []config.Tenant{
			{Name: "blue", Namespaces: []string{"blue-web", "blue-api"}, Identities: config.Identities{Users: []config.User{{Name: "alice"}}}},
			{Name: "green", Namespaces: []string{"green"}},
		},
		Probes: config.Probes{PerNamespace: 1, Services: services},
	}
}

// The plan of a run against a user's tenants: in their namespaces only
// probe pods (and Services if asked); everything else in bulkhead's own
// namespaces or cluster-scoped with the run ID in the name.
func TestPlanBYO(t *testing.T) {
	p, err := MakePlan(context.Background(), planOptions(t, byoConfig(false), "blue-web", "blue-api", "green"))
	require.NoError(t, err)
	byName := map[string]PlannedNamespace{}
	for _, n := range p.Namespaces {
		byName[n.Name] = n
	}
	require.Contains(t, byName, "bh-k3x9q-control")
	assert.True(t, byName["bh-k3x9q-control"].Own)
	assert.Contains(t, byName["bh-k3x9q-control"].Objects, "Lease bulkhead-run")
	assert.Contains(t, byName["bh-k3x9q-sentinel"].Objects, "Namespace bh-k3x9q-sentinel")

	// blue-api sorts first: the tenant's first namespace.
	assert.Equal(t, PlannedNamespace{Name: "blue-api", Tenant: "blue", UnderTest: true, Identities: true, First: true,
		Objects: []string{"Pod bulkhead-probe-k3x9q-0"}}, byName["blue-api"])
	assert.Equal(t, PlannedNamespace{Name: "blue-web", Tenant: "blue", UnderTest: true, Identities: true,
		Objects: []string{"Pod bulkhead-probe-k3x9q-0"}}, byName["blue-web"])
	assert.False(t, byName["green"].Identities)
	assert.Contains(t, p.ClusterScoped, "ValidatingAdmissionPolicy bulkhead-k3x9q-deny-external-ips")

	p, err = MakePlan(context.Background(), planOptions(t, byoConfig(true), "blue-web", "blue-api", "green"))
	require.NoError(t, err)
	for _, n := range p.Namespaces {
		if n.Name == "green" {
			assert.Equal(t, []string{"Pod bulkhead-probe-k3x9q-0", "Service bulkhead-probe-k3x9q-0"}, n.Objects)
		}
	}

	_, err = MakePlan(context.Background(), planOptions(t, byoConfig(false), "blue-web"))
	assert.ErrorContains(t, err, "does not exist", "a config naming missing namespaces fails the plan as it fails the run")
}

// The declared footprint of a run's set-up names every kind the run
// renders, in the place it goes, and nothing it does not render.
func TestFootprintCoversWhatTheRunRenders(t *testing.T) {
	rendered := map[checks.Where][]string{}
	add := func(w checks.Where, objs []string) {
		for _, o := range objs {
			kind, _, _ := strings.Cut(o, " ")
			if !slices.Contains(rendered[w], kind) {
				rendered[w] = append(rendered[w], kind)
			}
		}
	}
	for _, opts := range []Options{{RunID: "k3x9q", ProbeImage: "probe:dev"}, planOptions(t, byoConfig(true), "blue-web", "blue-api", "green")} {
		p, err := MakePlan(context.Background(), opts)
		require.NoError(t, err)
		add(checks.ClusterScoped, p.ClusterScoped)
		for _, n := range p.Namespaces {
			if n.Own {
				add(checks.OwnNamespaces, n.Objects)
			} else {
				add(checks.TenantNamespaces, n.Objects)
			}
		}
	}
	declared := map[checks.Where][]string{}
	for _, f := range Footprint {
		require.NotEmpty(t, f.Lifetime)
		declared[f.Where] = append(declared[f.Where], f.Kinds...)
	}
	for w, kinds := range rendered {
		assert.ElementsMatch(t, kinds, declared[w], "%s: the kinds the run renders vs the kinds session.Footprint declares", w)
	}
}
