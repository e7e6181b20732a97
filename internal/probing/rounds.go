package probing

import (
	"context"
	"sync"
	"time"
)

// Settle says when an item's rounds start to count.
type Settle int

const (
	// CountAlways: every round counts, from the first. For what bulkhead
	// did not set up (a user's tenant policies are already in place: no
	// grace for them).
	CountAlways Settle = iota
	// SettleFirst: rounds count from the round in which every SettleFirst
	// item matched its expectation (bulkhead's new pods reachable, its own
	// policies programmed). Paths that must work, and paths whose
	// expectation rests only on what bulkhead set up itself, settle first.
	SettleFirst
)

// Item is one thing probed every round, from one source pod.
type Item struct {
	Src    Pod
	Settle Settle
	// Retry: a result that does not match is probed once more in the same
	// round before the round is kept. For what must work: one answer lost
	// on a busy node (a probe pod gets little CPU, a datagram is dropped)
	// is not a broken path. Never for what must be blocked: a leak is a
	// leak the first time.
	Retry bool
}

// RoundsOptions bound the rounds.
type RoundsOptions struct {
	// Count is how many rounds count once settled (the settled round
	// included); default 3.
	Count int
	// SettleTimeout bounds the settle phase; when it passes, counting
	// starts anyway and Run.Settled is false.
	SettleTimeout time.Duration
	// Pause between rounds; default 500ms.
	Pause time.Duration
}

// Run is the outcome of Rounds: every round's results, all kept.
type Run[R any] struct {
	Rounds []Round[R]
	// SettledAt is the index in Rounds of the first round that counts for
	// SettleFirst items (every round counts for CountAlways items).
	SettledAt int
	// Settled is false when the settle phase ran out of time.
	Settled bool
	// SettledAfter is the time from the first round's start to the settled
	// round's start: how long bulkhead's own setup took to take effect.
	SettledAfter time.Duration
	// Execs counts exec round trips: one per source and round, and one per
	// source whose Retry items were probed again (the runner's own retries
	// of a failed exec are counted in none).
	Execs   int
	Elapsed time.Duration
}

// Round is one probing of every item.
type Round[R any] struct {
	// N is the round's number, from 1, settle rounds included.
	N     int
	Start time.Time
	// Results has one entry per item; an item whose source could not be
	// asked this round has the zero value and its source is in Failed.
	Results []R
	Failed  map[Pod]error
	// Attempts has one entry per item: 2 where a Retry item was probed
	// again (Results holds the second answer), else 1.
	Attempts []int
}

// Counts reports whether round index k counts for item i.
func (r *Run[R]) Counts(items []Item, i, k int) bool {
	return items[i].Settle == CountAlways || k >= r.SettledAt
}

// ProbeFunc probes, in one exec from src, the items with the given indices
// and returns their results in the same order.
type ProbeFunc[R any] func(ctx context.Context, src Pod, indices []int) ([]R, error)

// MatchFunc says whether item i's result matches its expectation.
type MatchFunc[R any] func(i int, r R) bool

// Rounds probes items in rounds, one exec per source pod per round, all
// sources in parallel. It settles first: rounds repeat until every
// SettleFirst item matches (or SettleTimeout passes), then Count rounds
// count, the settled one included. A source whose exec fails (after the
// runner's retries) is left out of that round only; the error ends Rounds
// only when ctx ends.
func Rounds[R any](ctx context.Context, items []Item, probe ProbeFunc[R], match MatchFunc[R], opts RoundsOptions) (*Run[R], error) {
	if opts.Count <= 0 {
		opts.Count = 3
	}
	if opts.Pause == 0 {
		opts.Pause = 500 * time.Millisecond
	}
	var order []Pod
	bySrc := map[Pod][]int{}
	needSettle := false
	for i, it := range items {
		if _, ok := bySrc[it.Src]; !ok {
			order = append(order, it.Src)
		}
		bySrc[it.Src] = append(bySrc[it.Src], i)
		needSettle = needSettle || it.Settle == SettleFirst
	}
	run := &Run[R]{SettledAt: -1}
	start := time.Now()
	deadline := start.Add(opts.SettleTimeout)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		round := probeOnce(ctx, len(run.Rounds)+1, items, order, bySrc, probe)
		run.Execs += len(order)
		run.Execs += retry(ctx, items, &round, probe, match)
		run.Rounds = append(run.Rounds, round)
		k := len(run.Rounds) - 1
		if run.SettledAt < 0 {
			switch {
			case !needSettle || settled(items, round, match):
				run.SettledAt, run.Settled = k, true
			case time.Now().After(deadline):
				run.SettledAt, run.Settled = k, false
			}
			if run.SettledAt >= 0 {
				run.SettledAfter = round.Start.Sub(start)
			}
		}
		if run.SettledAt >= 0 && k-run.SettledAt+1 >= opts.Count {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(opts.Pause):
		}
	}
	run.Elapsed = time.Since(start)
	return run, nil
}

func settled[R any](items []Item, round Round[R], match MatchFunc[R]) bool {
	for i, it := range items {
		if it.Settle != SettleFirst {
			continue
		}
		if _, failed := round.Failed[it.Src]; failed || !match(i, round.Results[i]) {
			return false
		}
	}
	return true
}

// roundKey carries the number of the round an exec belongs to, for the
// Simulated runner.
type roundKey struct{}

func probeOnce[R any](ctx context.Context, n int, items []Item, order []Pod, bySrc map[Pod][]int, probe ProbeFunc[R]) Round[R] {
	ctx = context.WithValue(ctx, roundKey{}, n)
	round := Round[R]{N: n, Start: time.Now().UTC(), Results: make([]R, len(items)), Failed: map[Pod]error{}, Attempts: make([]int, len(items))}
	for i := range round.Attempts {
		round.Attempts[i] = 1
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, src := range order {
		idx := bySrc[src]
		wg.Add(1)
		go func() {
			defer wg.Done()
			rs, err := probe(ctx, src, idx)
			if err == nil && len(rs) != len(idx) {
				err = errCount{want: len(idx), got: len(rs)}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				round.Failed[src] = err
				return
			}
			for j, i := range idx {
				round.Results[i] = rs[j]
			}
		}()
	}
	wg.Wait()
	return round
}

// retry probes once more, one exec per source, the Retry items of round
// whose result did not match, and keeps the second answer; it returns the
// number of execs. A source whose retry exec fails keeps its first answers.
func retry[R any](ctx context.Context, items []Item, round *Round[R], probe ProbeFunc[R], match MatchFunc[R]) int {
	var order []Pod
	bySrc := map[Pod][]int{}
	for i, it := range items {
		if _, failed := round.Failed[it.Src]; failed || !it.Retry || match(i, round.Results[i]) {
			continue
		}
		if _, ok := bySrc[it.Src]; !ok {
			order = append(order, it.Src)
		}
		bySrc[it.Src] = append(bySrc[it.Src], i)
	}
	if len(order) == 0 || ctx.Err() != nil {
		return 0
	}
	again := probeOnce(ctx, round.N, items, order, bySrc, probe)
	for _, src := range order {
		if _, failed := again.Failed[src]; failed {
			continue
		}
		for _, i := range bySrc[src] {
			round.Results[i], round.Attempts[i] = again.Results[i], 2
		}
	}
	return len(order)
}

type errCount struct{ want, got int }

func (e errCount) Error() string {
	return "the probe answered for " + itoa(e.got) + " of " + itoa(e.want) + " targets"
}
