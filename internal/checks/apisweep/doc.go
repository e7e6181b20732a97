// Package apisweep is the engine of the API authorization checks (the rbac
// and secrets areas): every identity of every tenant tries what its checks
// plan, in one sweep per run, and each check reads its slice of it.
//
// A check declares its attempts with a Planner (Register); the sweep
// discovers what the API server serves, plants what the attempts need
// (canaries, API probe pods), asks the access reviews, makes the real
// requests (from bulkhead's process, impersonating the identity, or from
// inside a pod with a ServiceAccount's own token) and judges each answer.
//
// Every attempt is proven twice where it can be: by a SubjectAccessReview
// (what the authorizer says) and by a real request (server-side dry-run for
// writes) whose answer must be a 403 from the authorizer, not a 404 or a
// validation error that would mean the request got past authorization. The
// same request in the tenant's own namespace, or by a synthetic identity in
// system:masters that bulkhead impersonates (PositiveControl), is the
// positive control.
package apisweep
