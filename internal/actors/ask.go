package actors

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
)

// Question is one access review: may Identity make the request the
// attributes describe (a resource request, or a non-resource path)?
type Question struct {
	Identity    checks.Identity
	Resource    *authorizationv1.ResourceAttributes
	NonResource *authorizationv1.NonResourceAttributes
}

// InNamespace is the question whether id may exercise r in namespace ns
// ("" for cluster scope).
func InNamespace(id checks.Identity, ns string, r Right) Question {
	return Question{Identity: id, Resource: &authorizationv1.ResourceAttributes{
		Namespace: ns, Verb: r.Verb, Group: r.Group, Resource: r.Resource, Subresource: r.Subresource}}
}

// key identifies a question: the same question is asked once per run.
func (q Question) key() string {
	b, _ := json.Marshal(struct {
		U   string
		G   []string
		RA  *authorizationv1.ResourceAttributes
		NRA *authorizationv1.NonResourceAttributes
	}{q.Identity.User, q.Identity.Groups, q.Resource, q.NonResource})
	return string(b)
}

// askParallel bounds the access reviews in flight.
const askParallel = 32

// Ask answers questions, the distinct ones concurrently and each once per
// run (later calls, and May, answer from the cache). The answers are in
// the order of qs.
func (m *Model) Ask(ctx context.Context, qs []Question) []Decision {
	out := make([]Decision, len(qs))
	sem := make(chan struct{}, askParallel)
	var wg sync.WaitGroup
	for i, q := range qs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out[i] = m.ask(ctx, q)
		})
	}
	wg.Wait()
	return out
}

// ask answers one question from the cache, asking the API server on the
// first use.
func (m *Model) ask(ctx context.Context, q Question) Decision {
	key := q.key()
	m.mu.Lock()
	rv, ok := m.reviews[key]
	if !ok {
		rv = &review{}
		m.reviews[key] = rv
	}
	m.mu.Unlock()
	rv.once.Do(func() { rv.d = m.review(ctx, q) })
	return rv.d
}

func (m *Model) review(ctx context.Context, q Question) Decision {
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: q.Identity.User, Groups: q.Identity.Groups, ResourceAttributes: q.Resource, NonResourceAttributes: q.NonResource}}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, err := m.reviewer().AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		return Decision{Err: fmt.Errorf("access review %s for %s: %w", q, q.Identity, err)}
	}
	return Decision{Allowed: res.Status.Allowed, Denied: res.Status.Denied, Reason: res.Status.Reason, EvaluationError: res.Status.EvaluationError}
}

func (q Question) String() string {
	switch {
	case q.NonResource != nil:
		return q.NonResource.Verb + " " + q.NonResource.Path
	case q.Resource != nil:
		r := q.Resource
		s := Right{Verb: r.Verb, Group: r.Group, Resource: r.Resource, Subresource: r.Subresource}.String()
		if r.Name != "" {
			s += " " + r.Name
		}
		if r.Namespace != "" {
			s += " in " + r.Namespace
		}
		return s
	}
	return "(nothing)"
}

// reviewer is the client access reviews are asked with: a twin of the
// run's clientset without a client-side rate limit (a sweep asks a few
// thousand, bounded by askParallel), or the env's own client when it is
// not a real one (unit tests).
func (m *Model) reviewer() kubernetes.Interface {
	m.fastOnce.Do(func() {
		m.fast = m.env.Kube.Core
		if _, real := m.env.Kube.Core.(*kubernetes.Clientset); !real {
			return
		}
		if cs, err := kubernetes.NewForConfig(Unthrottled(m.env.Kube.Config)); err == nil {
			m.fast = cs
		}
	})
	return m.fast
}

// Unthrottled is a copy of cfg whose client-side rate limit does not
// serialise fan-out; the caller bounds its concurrency itself.
func Unthrottled(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.QPS, c.Burst = 1000, 1000
	return c
}
