package podsecurity

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/inert"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/tenantapi/fakeapi"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

var (
	viewer = fakeapi.Viewer
	byo    = fakeapi.BYO
)

// runPSA002 runs PSA-002 against a fake API server that admits every
// workload and whose controllers never report (no events): it returns the
// result and every object the check sent to be created.
func runPSA002(t *testing.T, allowed ...string) (reports.CheckResult, []fakeapi.Request, []runtime.Object) {
	t.Helper()
	was := WorkloadTimeout
	WorkloadTimeout = 100 * time.Millisecond
	t.Cleanup(func() { WorkloadTimeout = was })
	api := fakeapi.New(t)
	for _, a := range allowed {
		api.Allowed[a] = true
	}
	res := checks.Execute(context.Background(), Checks()[1], api.Env(t, byo()))
	var created []runtime.Object
	for _, r := range api.Requests() {
		if r.Method != "POST" {
			continue
		}
		var obj runtime.Object
		switch {
		case strings.HasSuffix(r.Path, "/deployments"):
			obj = &appsv1.Deployment{}
		case strings.HasSuffix(r.Path, "/jobs"):
			obj = &batchv1.Job{}
		default:
			t.Errorf("PSA-002 created something other than a workload: %s", r.Path)
			continue
		}
		require.NoError(t, json.Unmarshal(r.Body, obj))
		created = append(created, obj)
	}
	return res, api.Requests(), created
}

// Every object PSA-002 creates for real has a pod template that can never
// run, whatever admission does with it: a scheduling gate, a node selector
// no node has, and a command that exits at once. (Pod Security is a
// validating admission: it can refuse these pods, never strip the locks.)
func TestEveryWorkloadPSA002CreatesCanNeverRun(t *testing.T) {
	_, _, created := runPSA002(t,
		"alice create apps/deployments a-web", "alice create batch/jobs a-web",
		"system:serviceaccount:a-web:viewer create batch/jobs a-web",
		"bob create apps/deployments b-web", "bob create batch/jobs b-web")
	require.Len(t, created, 8, "a forbidden and a compliant Deployment and Job per tenant")
	for _, obj := range created {
		tpl, ok := PodTemplate(obj)
		require.True(t, ok)
		assert.NoError(t, inert.Check(tpl.Spec), "%T", obj)
		assert.Equal(t, inert.NodeSelectorValue, tpl.Spec.NodeSelector[inert.NodeSelectorKey])
		assert.Contains(t, tpl.Spec.SchedulingGates, corev1.PodSchedulingGate{Name: inert.Gate})
		assert.Empty(t, tpl.Spec.NodeName)
		for _, c := range tpl.Spec.Containers {
			assert.Equal(t, inert.Command, c.Command)
			assert.Empty(t, c.Args)
		}
	}
}

// The check refuses to send a workload whose template could run.
func TestCreateWorkloadRefusesARunnableTemplate(t *testing.T) {
	api := fakeapi.New(t)
	env := api.Env(t, byo())
	w := workload{Kind: "Deployment", Name: "d"}
	obj, err := w.object(env)
	require.NoError(t, err)
	d := obj.(*appsv1.Deployment)
	d.Spec.Template.Spec.SchedulingGates = nil
	ans := createWorkload(context.Background(), w, d)
	require.Error(t, ans.Err)
	assert.Contains(t, ans.Err.Error(), "its pods could run")
	assert.Empty(t, api.Requests(), "nothing sent")
}

// An identity RBAC forbids to create a kind is not applicable and never
// tries; a tenant where nobody may create Jobs is not evaluated for Jobs;
// a controller that never reports is unproven, not a failure.
func TestWorkloadsOnlyAsIdentitiesThatMayCreateThem(t *testing.T) {
	res, reqs, created := runPSA002(t,
		"alice create apps/deployments a-web",
		"system:serviceaccount:a-web:viewer create batch/jobs a-web",
		"bob create apps/deployments b-web")
	require.Equal(t, reports.Unproven, res.Verdict, res.Reason)
	assert.Contains(t, res.Reason, "not evaluated: tenant b in b-web: no identity may create jobs.batch")
	assert.Len(t, created, 6)
	na := map[string]bool{}
	for _, o := range res.Observations {
		if o.Status == reports.StatusNotApplicable {
			na[o.Why] = true
		}
		assert.False(t, o.Leak(), checks.DescribeOne(o))
	}
	assert.True(t, na["serviceaccount a-web/viewer may not create deployments.apps in a-web (RBAC)"], na)
	assert.True(t, na["user alice may not create jobs.batch in a-web (RBAC)"], na)
	assert.True(t, na["user bob may not create jobs.batch in b-web (RBAC)"], na)
	for _, r := range reqs {
		if r.Method != "POST" {
			continue
		}
		switch {
		case strings.HasSuffix(r.Path, "/deployments"):
			assert.Contains(t, []string{"alice", "bob"}, r.User)
		case strings.HasSuffix(r.Path, "/jobs"):
			assert.Equal(t, viewer.User, r.User)
		}
	}
}
