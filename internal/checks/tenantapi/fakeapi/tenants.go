package fakeapi

import "github.com/bulkhead-k8s/bulkhead/internal/checks"

// Identities of the tenants BYO describes.
var (
	Alice  = checks.Identity{User: "alice", Groups: []string{"team-a", "system:authenticated"}}
	Viewer = checks.ServiceAccountIdentity("a-web", "viewer")
	Bob    = checks.Identity{User: "bob", Groups: []string{"team-b", "system:authenticated"}}
)

// BYO is a run against tenants bulkhead did not create: a user and a
// ServiceAccount in tenant a, a user in tenant b, and bulkhead's control
// namespace. Which of them may do what is the test's Allowed table.
func BYO() checks.Topology {
	return checks.Topology{Tenants: []checks.Tenant{
		{Name: "a", Namespaces: []string{"a-web"}, Isolated: true, Identities: []checks.Identity{Alice, Viewer}},
		{Name: "b", Namespaces: []string{"b-web"}, Isolated: true, Identities: []checks.Identity{Bob}},
		{Name: "control", Namespaces: []string{"bh-control"}},
	}}
}

// RunnerRefused is the API server's message when bulkhead's runner
// (ci-runner) may not impersonate user: a 403 that is nobody's denial of
// user.
func RunnerRefused(user string) string {
	return `users "` + user + `" is forbidden: User "ci-runner" cannot impersonate resource "users" in API group "" at the cluster scope`
}
