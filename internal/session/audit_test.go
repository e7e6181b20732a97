package session

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
)

func TestParseCreate(t *testing.T) {
	cases := []struct {
		path string
		want created
		ok   bool
	}{
		{"/api/v1/namespaces/team-a/pods", created{schema.GroupVersionResource{Version: "v1", Resource: "pods"}, "team-a"}, true},
		{"/apis/apps/v1/namespaces/team-a/deployments", created{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, "team-a"}, true},
		{"/api/v1/namespaces", created{schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, ""}, true},
		{"/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies", created{schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicies"}, ""}, true},
		{"/api/v1/namespaces/team-a/pods/p/exec", created{}, false},
		{"/api/v1/namespaces/team-a/serviceaccounts/default/token", created{}, false},
		{"/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", created{}, false},
		{"/version", created{}, false},
	}
	for _, tc := range cases {
		got, ok := parseCreate(tc.path)
		assert.Equal(t, tc.ok, ok, tc.path)
		if tc.ok {
			assert.Equal(t, tc.want, got, tc.path)
		}
	}
}

// The audit counts accepted creates that are not dry-runs, made with a
// check's context, and names those the check does not declare; a check
// running alongside in another lane keeps its own.
func TestAudit(t *testing.T) {
	a := &audit{}
	status := http.StatusCreated
	rt := a.wrap(roundTripper(func(*http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: status, Body: io.NopCloser(strings.NewReader(""))}, nil
	}))
	ctx := context.Background()
	post := func(url string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://api"+url, nil)
		resp, err := rt.RoundTrip(req)
		if assert.NoError(t, err) {
			resp.Body.Close()
		}
	}
	post("/api/v1/namespaces/team-a/configmaps")   // the session's set-up: not a check's
	ctx = auditedAs(context.Background(), "X-002") // another lane's check
	post("/api/v1/namespaces/team-a/services")
	ctx = auditedAs(context.Background(), "X-001")
	post("/api/v1/namespaces/team-a/pods")
	post("/api/v1/namespaces/team-a/pods?dryRun=All")
	post("/api/v1/namespaces/bh-r-control/services")
	post("/api/v1/namespaces/team-a/secrets")
	post("/apis/rbac.authorization.k8s.io/v1/clusterroles")
	post("/api/v1/namespaces/default/configmaps")
	status = http.StatusForbidden
	post("/api/v1/namespaces/team-a/persistentvolumeclaims")

	top := checks.Topology{Tenants: []checks.Tenant{
		{Name: "team", Namespaces: []string{"team-a"}, Isolated: true},
		{Name: "control", Namespaces: []string{"bh-r-control"}, Reference: true},
	}}
	c := checks.Check{ID: "X-001", Creates: []checks.Footprint{
		{Where: checks.TenantNamespaces, Kinds: []string{"Pod"}, What: "pods", Lifetime: checks.DuringCheck},
		{Where: checks.OwnNamespaces, Kinds: []string{"Service"}, What: "a service", Lifetime: checks.DuringCheck},
	}}
	kinds := func(r schema.GroupVersionResource) string {
		return map[string]string{"pods": "Pod", "services": "Service", "secrets": "Secret", "clusterroles": "ClusterRole", "configmaps": "ConfigMap"}[r.Resource]
	}
	assert.Equal(t, []string{
		"footprint audit: X-001 created a Secret in namespace team-a (tenant team) that its declared footprint (Check.Creates) does not cover",
		"footprint audit: X-001 created a ClusterRole (cluster-scoped) that its declared footprint (Check.Creates) does not cover",
		"footprint audit: X-001 created a ConfigMap in namespace default (no tenant of the run) that its declared footprint (Check.Creates) does not cover",
	}, a.undeclared(c, top, kinds))
	assert.Equal(t, 6, a.count(), "X-001's five accepted creates and X-002's one")
}
