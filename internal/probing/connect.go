package probing

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/bulkhead-k8s/bulkhead/probes/wire"
)

func itoa(i int) string { return strconv.Itoa(i) }

// Target is one connect probe: from Src to Target, settling as Settle says.
type Target struct {
	Item
	Target wire.ConnectTarget
}

// ConnectRounds probes connect targets in rounds (see Rounds): one
// `probe connect` exec per source pod per round, each probing all of its
// targets in parallel inside the pod.
func ConnectRounds(ctx context.Context, r Runner, targets []Target, timeout time.Duration, match MatchFunc[wire.ConnectResult], opts RoundsOptions) (*Run[wire.ConnectResult], error) {
	probe := func(ctx context.Context, src Pod, idx []int) ([]wire.ConnectResult, error) {
		return ConnectOnce(ctx, r, src, targets, idx, timeout)
	}
	return Rounds(ctx, itemsOf(targets), probe, match, opts)
}

// ConnectOnce probes targets[idx] from src in one exec and returns the
// results in idx order.
func ConnectOnce(ctx context.Context, r Runner, src Pod, targets []Target, idx []int, timeout time.Duration) ([]wire.ConnectResult, error) {
	entry := func(i int, id string) wire.ConnectTarget {
		t := targets[i].Target
		t.ID = id
		return t
	}
	call := func(ts []wire.ConnectTarget) ([]wire.ConnectResult, error) {
		resp, err := r.Connect(ctx, src, wire.ConnectRequest{Targets: ts, TimeoutMS: int(timeout / time.Millisecond)})
		if err != nil {
			return nil, err
		}
		return resp.Results, nil
	}
	return exchange(src, idx, entry, call, func(r wire.ConnectResult) string { return r.ID })
}

// itemsOf returns the Item of each target or endpoint.
func itemsOf[T interface{ item() Item }](ts []T) []Item {
	out := make([]Item, len(ts))
	for i, t := range ts {
		out[i] = t.item()
	}
	return out
}

func (it Item) item() Item { return it }

// exchange sends items idx in one exec, each under the ID of its position
// in the batch ("0", "1", ...) so answers map back to items whatever IDs
// the callers gave them, and returns the answers in idx order. An answer
// for an ID it did not ask, or a batch not answered in full, is an error.
func exchange[T, R any](src Pod, idx []int, entry func(i int, id string) T, call func([]T) ([]R, error), id func(R) string) ([]R, error) {
	batch := make([]T, len(idx))
	for j, i := range idx {
		batch[j] = entry(i, strconv.Itoa(j))
	}
	results, err := call(batch)
	if err != nil {
		return nil, err
	}
	n := len(idx)
	out := make([]R, n)
	seen := make([]bool, n)
	count := 0
	for _, res := range results {
		j, err := strconv.Atoi(id(res))
		if err != nil || j < 0 || j >= n || strconv.Itoa(j) != id(res) {
			return nil, fmt.Errorf("probe in %s answered for unknown target %q", src, id(res))
		}
		if !seen[j] {
			seen[j] = true
			count++
		}
		out[j] = res
	}
	if count != n {
		return nil, errCount{want: n, got: count}
	}
	return out, nil
}
