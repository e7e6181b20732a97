package probing

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkhead-k8s/bulkhead/probes/wire"
)

var (
	podA = Pod{Namespace: "a", Name: "p0"}
	podB = Pod{Namespace: "b", Name: "p0"}
)

func reachable(ok bool) wire.ConnectResult {
	if ok {
		return wire.ConnectResult{Outcome: wire.Reachable}
	}
	return wire.ConnectResult{Outcome: wire.Timeout}
}

// two targets from podA: "must" must be reachable (settles first), "leak"
// must be blocked and counts from round 1.
func targets() []Target {
	return []Target{
		{Item: Item{Src: podA, Settle: SettleFirst}, Target: wire.ConnectTarget{Protocol: wire.TCP, Host: "must", Port: 1}},
		{Item: Item{Src: podA, Settle: CountAlways}, Target: wire.ConnectTarget{Protocol: wire.TCP, Host: "leak", Port: 1}},
		{Item: Item{Src: podB, Settle: CountAlways}, Target: wire.ConnectTarget{Protocol: wire.TCP, Host: "leak", Port: 1}},
	}
}

func matchByHost(ts []Target) MatchFunc[wire.ConnectResult] {
	return func(i int, r wire.ConnectResult) bool {
		return (r.Outcome == wire.Reachable) == (ts[i].Target.Host == "must")
	}
}

func TestRoundsSettleThenCount(t *testing.T) {
	ts := targets()
	sim := &Simulated{ConnectFunc: func(src Pod, tg wire.ConnectTarget, call int) wire.ConnectResult {
		// the must-work path works from round 3 on; the blocked one leaks
		// in round 2 only (a flapping policy)
		if tg.Host == "must" {
			return reachable(call >= 3)
		}
		return reachable(call == 2)
	}}
	run, err := ConnectRounds(context.Background(), sim, ts, time.Second, matchByHost(ts), RoundsOptions{Count: 2, SettleTimeout: time.Minute, Pause: time.Millisecond})
	require.NoError(t, err)
	require.Len(t, run.Rounds, 4, "rounds 1-2 settle, 3 is the settled round, 4 the second counted one")
	assert.True(t, run.Settled)
	assert.Equal(t, 2, run.SettledAt)
	assert.Equal(t, 8, run.Execs, "one exec per source and round")
	// the leak of round 2 counts for the CountAlways path, the settle rounds
	// do not count for the SettleFirst one
	assert.True(t, run.Counts(itemsOf(ts), 1, 1))
	assert.Equal(t, wire.Reachable, run.Rounds[1].Results[1].Outcome)
	assert.False(t, run.Counts(itemsOf(ts), 0, 1))
	assert.True(t, run.Counts(itemsOf(ts), 0, 2))
	for k, r := range run.Rounds {
		assert.Equal(t, k+1, r.N)
	}
}

func TestRoundsSettleTimeoutStillCounts(t *testing.T) {
	ts := targets()
	sim := &Simulated{} // nothing ever answers: the must-work path never settles
	run, err := ConnectRounds(context.Background(), sim, ts, time.Second, matchByHost(ts), RoundsOptions{Count: 2, SettleTimeout: 20 * time.Millisecond, Pause: 5 * time.Millisecond})
	require.NoError(t, err)
	assert.False(t, run.Settled)
	assert.GreaterOrEqual(t, len(run.Rounds), 3)
	assert.Equal(t, len(run.Rounds)-2, run.SettledAt)
}

func TestRoundsKeepGoingWithoutAFailedSource(t *testing.T) {
	ts := targets()
	sim := &Simulated{
		ConnectFunc: func(src Pod, tg wire.ConnectTarget, call int) wire.ConnectResult { return reachable(tg.Host == "must") },
		ExecErr: func(src Pod, mode string, call int) error {
			if src == podB && call == 1 {
				return errors.New("stream reset")
			}
			return nil
		},
	}
	run, err := ConnectRounds(context.Background(), sim, ts, time.Second, matchByHost(ts), RoundsOptions{Count: 2, Pause: time.Millisecond})
	require.NoError(t, err, "one pod's failed exec is not the matrix's error")
	require.Len(t, run.Rounds, 2)
	assert.Contains(t, run.Rounds[0].Failed, podB)
	assert.NotContains(t, run.Rounds[0].Failed, podA)
	assert.Equal(t, wire.Reachable, run.Rounds[0].Results[0].Outcome, "podA's paths are probed in round 1")
	assert.Empty(t, run.Rounds[1].Failed)
}

func TestExecRetriesThenDecodes(t *testing.T) {
	calls := 0
	e := &Exec{Backoff: time.Millisecond, Run: func(ctx context.Context, pod Pod, stdin []byte, args ...string) ([]byte, error) {
		calls++
		if calls < 3 {
			return nil, errors.New("connection reset")
		}
		return []byte(`{"version":1,"source":{"pod":"p0","namespace":"a"},"results":[]}`), nil
	}}
	_, err := e.Connect(context.Background(), podA, wire.ConnectRequest{})
	require.NoError(t, err)
	assert.Equal(t, 3, calls)

	calls = 0
	e.Run = func(ctx context.Context, pod Pod, stdin []byte, args ...string) ([]byte, error) {
		calls++
		return nil, errors.New("pod gone")
	}
	_, err = e.Connect(context.Background(), podA, wire.ConnectRequest{})
	require.Error(t, err)
	assert.True(t, IsExecError(err))
	assert.Contains(t, err.Error(), "3 attempts")
}

func TestExecRefusesAnotherContractOrPod(t *testing.T) {
	out := `{"version":99,"source":{"pod":"p0"}}`
	e := &Exec{Run: func(context.Context, Pod, []byte, ...string) ([]byte, error) { return []byte(out), nil }}
	_, err := e.Caps(context.Background(), podA)
	assert.ErrorContains(t, err, "use the matching probe image")
	out = `{"version":1,"source":{"pod":"other","namespace":"a"}}`
	_, err = e.Caps(context.Background(), podA)
	assert.ErrorContains(t, err, "says it is a/other")
	assert.False(t, IsExecError(err), "a wrong answer is not retried as an exec failure")
}

func TestMetadataRoundsAnswerEachEndpointInOrder(t *testing.T) {
	eps := []Endpoint{
		{Item: Item{Src: podA, Settle: SettleFirst}, Endpoint: wire.MetadataEndpoint{ID: "peer", Host: "10.0.0.2", Port: 8080}},
		{Item: Item{Src: podA, Settle: CountAlways}, Endpoint: wire.MetadataEndpoint{ID: "imds", Host: "169.254.169.254", Port: 80}},
		{Item: Item{Src: podB, Settle: CountAlways}, Endpoint: wire.MetadataEndpoint{ID: "imds", Host: "169.254.169.254", Port: 80}},
	}
	sim := &Simulated{MetadataFunc: func(src Pod, e wire.MetadataEndpoint, call int) wire.MetadataResult {
		// the peer answers from round 2 on; the metadata address never
		r := wire.MetadataResult{Address: e.Host, Connect: wire.Timeout}
		if e.Host == "10.0.0.2" && call >= 2 {
			r.Connect = wire.Reachable
		}
		return r
	}}
	match := func(i int, r wire.MetadataResult) bool { return (r.Connect == wire.Reachable) == (i == 0) }
	run, err := MetadataRounds(context.Background(), sim, eps, time.Second, match, RoundsOptions{Count: 2, SettleTimeout: time.Minute, Pause: time.Millisecond})
	require.NoError(t, err)
	require.Len(t, run.Rounds, 3, "round 1 settles, rounds 2 and 3 count")
	assert.Equal(t, 1, run.SettledAt)
	for _, r := range run.Rounds {
		assert.Equal(t, "10.0.0.2", r.Results[0].Address, "answers map back to their endpoints")
		assert.Equal(t, "169.254.169.254", r.Results[1].Address)
		assert.Equal(t, "169.254.169.254", r.Results[2].Address)
	}
	assert.Equal(t, 3, sim.Calls(podA, "metadata"), "one exec per source and round")
}

func TestAnAnswerForAnotherBatchIsRefused(t *testing.T) {
	answer := func(ids ...string) func([]wire.ConnectTarget) ([]wire.ConnectResult, error) {
		return func([]wire.ConnectTarget) ([]wire.ConnectResult, error) {
			var out []wire.ConnectResult
			for _, id := range ids {
				out = append(out, wire.ConnectResult{ID: id})
			}
			return out, nil
		}
	}
	entry := func(i int, id string) wire.ConnectTarget { return wire.ConnectTarget{ID: id} }
	id := func(r wire.ConnectResult) string { return r.ID }
	_, err := exchange(podA, []int{4, 7}, entry, answer("0", "01"), id)
	assert.ErrorContains(t, err, `unknown target "01"`)
	_, err = exchange(podA, []int{4, 7}, entry, answer("1"), id)
	assert.ErrorContains(t, err, "answered for 1 of 2")
	got, err := exchange(podA, []int{4, 7}, entry, answer("1", "0"), id)
	require.NoError(t, err)
	assert.Equal(t, []wire.ConnectResult{{ID: "0"}, {ID: "1"}}, got, "answers in batch order")
}

// A must-work item that misses once is probed again in the same round and
// the second answer is kept; a blocked item that leaks is not asked again.
func TestRoundsRetryWhatMustWorkOnce(t *testing.T) {
	ts := targets()
	ts[0].Retry = true
	var mu sync.Mutex // sources are probed in parallel
	asked := map[string]int{}
	sim := &Simulated{ConnectFunc: func(src Pod, tg wire.ConnectTarget, call int) wire.ConnectResult {
		mu.Lock()
		defer mu.Unlock()
		asked[src.Namespace+"/"+tg.Host]++
		if tg.Host == "must" {
			// lost in round 1 (first answer), then works
			return reachable(asked["a/must"] != 1)
		}
		return reachable(src == podB) // podB's blocked path leaks
	}}
	run, err := ConnectRounds(context.Background(), sim, ts, time.Second, matchByHost(ts), RoundsOptions{Count: 2, SettleTimeout: time.Minute, Pause: time.Millisecond})
	require.NoError(t, err)
	require.Len(t, run.Rounds, 2, "the retry settled round 1")
	assert.Equal(t, wire.Reachable, run.Rounds[0].Results[0].Outcome, "the retry's answer is kept")
	assert.Equal(t, []int{2, 1, 1}, run.Rounds[0].Attempts)
	assert.Equal(t, []int{1, 1, 1}, run.Rounds[1].Attempts)
	assert.Equal(t, 3, asked["a/must"], "asked twice in round 1, once in round 2")
	assert.Equal(t, 2, asked["b/leak"], "a leak is not asked again")
	assert.Equal(t, 5, run.Execs, "two sources per round, and the retry exec of podA")
}

// An item that misses again keeps the second miss; one that keeps missing
// is asked twice a round, no more.
func TestRoundsRetryKeepsTheSecondMiss(t *testing.T) {
	ts := targets()[:1]
	ts[0].Retry = true
	calls := 0
	sim := &Simulated{ConnectFunc: func(Pod, wire.ConnectTarget, int) wire.ConnectResult {
		calls++
		return wire.ConnectResult{Outcome: wire.Timeout, Detail: "attempt " + itoa(calls)}
	}}
	run, err := ConnectRounds(context.Background(), sim, ts, time.Second, matchByHost(ts), RoundsOptions{Count: 1, SettleTimeout: time.Nanosecond, Pause: time.Millisecond})
	require.NoError(t, err)
	require.Len(t, run.Rounds, 1)
	assert.False(t, run.Settled)
	assert.Equal(t, "attempt 2", run.Rounds[0].Results[0].Detail)
	assert.Equal(t, []int{2}, run.Rounds[0].Attempts)
	assert.Equal(t, 2, calls)
}
