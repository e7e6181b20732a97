package apisweep

import (
	"context"
	"encoding/json"
	"sync"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
)

// reviewKey identifies a SubjectAccessReview: attempts that ask the same
// question share one review.
func reviewKey(id checks.Identity, r Request) string {
	ra, nra := r.Attributes()
	b, _ := json.Marshal(struct {
		U   string
		G   []string
		RA  *authorizationv1.ResourceAttributes
		NRA *authorizationv1.NonResourceAttributes
	}{id.User, id.Groups, ra, nra})
	return string(b)
}

// askReviews asks a SubjectAccessReview for every attempt that wants one,
// each distinct question once, and returns the answers by attempt (nil for
// an attempt without a review) and how many were asked.
func askReviews(ctx context.Context, env *checks.Env, attempts []Attempt) ([]*Review, int) {
	out := make([]*Review, len(attempts))
	byKey := map[string]*Review{}
	var keys []string
	first := map[string]int{}
	for i, a := range attempts {
		if !a.Review {
			continue
		}
		k := reviewKey(a.Identity, a.Req)
		if _, ok := byKey[k]; !ok {
			byKey[k] = &Review{}
			keys = append(keys, k)
			first[k] = i
		}
		out[i] = byKey[k]
	}
	cs, err := kubernetes.NewForConfig(fastConfig(env.Kube.Config))
	if err != nil {
		for _, r := range byKey {
			r.Err = err.Error()
		}
		return out, len(keys)
	}
	// Each goroutine fills the one review its question owns.
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for _, k := range keys {
		a, rev := attempts[first[k]], byKey[k]
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			*rev = review(ctx, cs, a)
		})
	}
	wg.Wait()
	return out, len(keys)
}

func review(ctx context.Context, cs kubernetes.Interface, a Attempt) Review {
	ra, nra := a.Req.Attributes()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: a.Identity.User, Groups: a.Identity.Groups, ResourceAttributes: ra, NonResourceAttributes: nra}}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	res, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		return Review{Err: err.Error()}
	}
	return Review{Allowed: res.Status.Allowed, Denied: res.Status.Denied, Reason: res.Status.Reason, EvaluationError: res.Status.EvaluationError}
}
