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
	items := make([]Item, len(targets))
	for i, t := range targets {
		items[i] = t.Item
	}
	probe := func(ctx context.Context, src Pod, idx []int) ([]wire.ConnectResult, error) {
		return ConnectOnce(ctx, r, src, targets, idx, timeout)
	}
	return Rounds(ctx, items, probe, match, opts)
}

// ConnectOnce probes targets[idx] from src in one exec and returns the
// results in idx order.
func ConnectOnce(ctx context.Context, r Runner, src Pod, targets []Target, idx []int, timeout time.Duration) ([]wire.ConnectResult, error) {
	req := wire.ConnectRequest{TimeoutMS: int(timeout / time.Millisecond)}
	pos := map[string]int{}
	for j, i := range idx {
		t := targets[i].Target
		t.ID = strconv.Itoa(j)
		pos[t.ID] = j
		req.Targets = append(req.Targets, t)
	}
	resp, err := r.Connect(ctx, src, req)
	if err != nil {
		return nil, err
	}
	out := make([]wire.ConnectResult, len(idx))
	seen := 0
	for _, res := range resp.Results {
		j, ok := pos[res.ID]
		if !ok {
			return nil, fmt.Errorf("probe in %s answered for unknown target %q", src, res.ID)
		}
		out[j] = res
		seen++
	}
	if seen != len(idx) {
		return nil, errCount{want: len(idx), got: seen}
	}
	return out, nil
}
