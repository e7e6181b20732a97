package probing

import (
	"context"
	"time"

	"github.com/bulkhead-k8s/bulkhead/probes/wire"
)

// Endpoint is one metadata endpoint probe: from Src to Endpoint, settling
// as Settle says.
type Endpoint struct {
	Item
	Endpoint wire.MetadataEndpoint
}

// MetadataRounds probes metadata endpoints in rounds (see Rounds): one
// `probe metadata` exec per source pod per round, each trying all of its
// endpoints in parallel inside the pod.
func MetadataRounds(ctx context.Context, r Runner, eps []Endpoint, timeout time.Duration, match MatchFunc[wire.MetadataResult], opts RoundsOptions) (*Run[wire.MetadataResult], error) {
	probe := func(ctx context.Context, src Pod, idx []int) ([]wire.MetadataResult, error) {
		return MetadataOnce(ctx, r, src, eps, idx, timeout)
	}
	return Rounds(ctx, itemsOf(eps), probe, match, opts)
}

// MetadataOnce tries eps[idx] from src in one exec and returns the results
// in idx order.
func MetadataOnce(ctx context.Context, r Runner, src Pod, eps []Endpoint, idx []int, timeout time.Duration) ([]wire.MetadataResult, error) {
	entry := func(i int, id string) wire.MetadataEndpoint {
		e := eps[i].Endpoint
		e.ID = id
		return e
	}
	call := func(es []wire.MetadataEndpoint) ([]wire.MetadataResult, error) {
		resp, err := r.Metadata(ctx, src, wire.MetadataRequest{Endpoints: es, TimeoutMS: int(timeout / time.Millisecond)})
		if err != nil {
			return nil, err
		}
		return resp.Results, nil
	}
	return exchange(src, idx, entry, call, func(r wire.MetadataResult) string { return r.ID })
}
