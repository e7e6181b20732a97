package apisweep

import (
	"context"

	"github.com/bulkhead-k8s/bulkhead/internal/actors"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
)

// question is the access review an attempt asks.
func question(a Attempt) actors.Question {
	ra, nra := a.Req.Attributes()
	return actors.Question{Identity: a.Identity, Resource: ra, NonResource: nra}
}

// askReviews asks the identity model the access review of every attempt
// that wants one (each distinct question once per run) and returns the
// answers by attempt (nil for an attempt without a review).
func askReviews(ctx context.Context, env *checks.Env, attempts []Attempt) []*Review {
	var qs []actors.Question
	var idx []int
	for i, a := range attempts {
		if a.Review {
			qs = append(qs, question(a))
			idx = append(idx, i)
		}
	}
	out := make([]*Review, len(attempts))
	for j, d := range actors.Of(env).Ask(ctx, qs) {
		out[idx[j]] = reviewOf(d)
	}
	return out
}

func reviewOf(d actors.Decision) *Review {
	r := &Review{Allowed: d.Allowed, Denied: d.Denied, Reason: d.Reason, EvaluationError: d.EvaluationError}
	if d.Err != nil {
		r.Err = d.Err.Error()
	}
	return r
}
