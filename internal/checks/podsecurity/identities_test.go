package podsecurity

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/tenantapi/fakeapi"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// PSA-001 acts only as identities that may create pods: the others are
// not applicable and send nothing. Every forbidden pod is rejected by Pod
// Security for its own reason: the check passes.
func TestPodAdmissionOnlyAsIdentitiesThatMayCreatePods(t *testing.T) {
	api := fakeapi.New(t)
	api.Allowed["alice create pods a-web"] = true
	api.Allowed["bob create pods b-web"] = true
	api.Answer = func(r fakeapi.Request) (int, string) {
		if r.Method != "POST" {
			return 200, "" // the runner reads the namespaces' labels
		}
		var p corev1.Pod
		if err := json.Unmarshal(r.Body, &p); err != nil {
			return 400, err.Error()
		}
		if p.Name == PodName("compliant") {
			return 201, ""
		}
		v, ok := VariantNamed(strings.TrimPrefix(p.Name, "bulkhead-psa-"))
		if !ok {
			return 400, "unknown pod " + p.Name
		}
		return 403, fmt.Sprintf(`pods %q is forbidden: violates PodSecurity "restricted:latest": %s (...)`, p.Name, v.Keyword)
	}
	res := checks.Execute(context.Background(), Checks()[0], api.Env(t, byo()))
	require.Equal(t, reports.Pass, res.Verdict, res.Reason)
	na := 0
	for _, o := range res.Observations {
		if o.Status == reports.StatusNotApplicable {
			na++
			assert.Equal(t, "serviceaccount a-web/viewer may not create pods in a-web (RBAC)", o.Why)
		}
	}
	assert.Equal(t, 1, na)
	for _, r := range api.Requests() {
		assert.NotEqual(t, viewer.User, r.User, "an identity that may not try does not try")
		if r.Method == "POST" {
			assert.True(t, r.DryRun, "PSA-001 sends only dry-runs")
		}
	}
}

// A refusal that is not Pod Security's (here bulkhead's runner may not
// impersonate) proves nothing: unproven, never pass and never fail.
func TestPodAdmissionRefusedForAnotherReasonIsUnproven(t *testing.T) {
	api := fakeapi.New(t)
	api.Allowed["alice create pods a-web"] = true
	api.Answer = func(r fakeapi.Request) (int, string) {
		if strings.Contains(string(r.Body), PodName("compliant")) {
			return 201, ""
		}
		return 403, fakeapi.RunnerRefused("alice")
	}
	top := byo()
	top.Tenants = top.Tenants[:1]
	res := checks.Execute(context.Background(), Checks()[0], api.Env(t, top))
	require.Equal(t, reports.Unproven, res.Verdict, res.Reason)
	assert.NotContains(t, res.Reason, "not as expected")
}

// PSA-003: a 403 naming the identity is a denial; the runner's refused
// impersonation is not, and leaves that identity's tests unproven.
func TestRelabelDenialMustNameTheIdentity(t *testing.T) {
	api := fakeapi.New(t)
	api.Answer = func(r fakeapi.Request) (int, string) {
		switch r.User {
		case "":
			return 200, "" // the administrator's control
		case "alice":
			return 403, `namespaces "a-web" is forbidden: User "alice" cannot patch resource "namespaces" in API group "" in the namespace "a-web"`
		}
		return 403, fakeapi.RunnerRefused(r.User)
	}
	top := byo()
	top.Tenants = top.Tenants[:1]
	res := checks.Execute(context.Background(), Checks()[2], api.Env(t, top))
	require.Equal(t, reports.Unproven, res.Verdict, res.Reason)
	for _, o := range res.Observations {
		if o.Role != reports.RoleTest {
			continue
		}
		if o.Actor.Identity == "alice" {
			assert.True(t, o.Passed(), checks.DescribeOne(o))
		} else {
			assert.Equal(t, reports.StatusUnproven, o.Status, checks.DescribeOne(o))
		}
	}
}
