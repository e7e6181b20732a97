package session

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

type heard struct {
	mu       sync.Mutex
	started  []string
	finished []string
}

func (h *heard) CheckStarted(c checks.Check, i, n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.started = append(h.started, c.ID)
}

func (h *heard) CheckFinished(res reports.CheckResult, i, n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.finished = append(h.finished, res.ID)
}

func bareSession() *Session {
	return &Session{opts: Options{Log: slog.New(slog.DiscardHandler)}, env: &checks.Env{}}
}

func passing(obs ...reports.Observation) checks.Outcome {
	return checks.Outcome{Observations: obs}
}

// The lanes run side by side: the API lane's first check waits until the
// probe lane's check has started, which only a concurrent run lets happen.
// Each lane keeps its order, and the results come back in registry order.
func TestExecuteAllRunsLanesSideBySide(t *testing.T) {
	probing := make(chan struct{})
	var apiOrder []string
	var mu sync.Mutex
	api := func(id string, wait bool) checks.Check {
		return checks.Check{ID: id, Area: checks.Quota, NoControl: "test", Run: func(ctx context.Context, _ *checks.Env) checks.Outcome {
			if wait {
				select {
				case <-probing:
				case <-time.After(5 * time.Second):
					return checks.Errorf("the probe lane never started: the lanes ran one after another")
				}
			}
			mu.Lock()
			apiOrder = append(apiOrder, id)
			mu.Unlock()
			return passing(reports.Observation{OK: true, Role: reports.RoleTest})
		}}
	}
	probe := checks.Check{ID: "NET-001", Area: checks.Network, Lane: checks.LaneNetwork, NoControl: "test",
		Run: func(context.Context, *checks.Env) checks.Outcome {
			close(probing)
			return passing(reports.Observation{OK: true, Role: reports.RoleTest})
		}}
	s := bareSession()
	h := &heard{}
	require.NoError(t, s.ExecuteAll(context.Background(), []checks.Check{probe, api("QUOTA-001", true), api("QUOTA-002", false)}, h))

	res := s.Results()
	require.Len(t, res.Checks, 3)
	var ids []string
	for _, c := range res.Checks {
		ids = append(ids, c.ID)
		assert.NotEqual(t, reports.Error, c.Verdict, "%s: %s", c.ID, c.Reason)
	}
	assert.Equal(t, []string{"NET-001", "QUOTA-001", "QUOTA-002"}, ids, "results in registry order (area, then ID)")
	assert.Equal(t, []string{"QUOTA-001", "QUOTA-002"}, apiOrder, "a lane keeps its order")
	assert.ElementsMatch(t, []string{"NET-001", "QUOTA-001", "QUOTA-002"}, h.finished)
}

// Once the run is interrupted, no lane starts another check: those are
// recorded as not run, saying so.
func TestExecuteAllStopsEveryLaneWhenInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	first := checks.Check{ID: "QUOTA-001", Area: checks.Quota, NoControl: "test", Run: func(context.Context, *checks.Env) checks.Outcome {
		cancel()
		return passing(reports.Observation{OK: true, Role: reports.RoleTest})
	}}
	later := checks.Check{ID: "QUOTA-002", Area: checks.Quota, Run: func(context.Context, *checks.Env) checks.Outcome {
		t.Error("a check started after the interruption")
		return checks.Outcome{}
	}}
	s := bareSession()
	require.NoError(t, s.ExecuteAll(ctx, []checks.Check{first, later}, &heard{}))
	res := s.Results()
	require.Len(t, res.Checks, 2)
	assert.Equal(t, reports.Error, res.Checks[0].Verdict, "interrupted while it ran")
	assert.Equal(t, reports.Skipped, res.Checks[1].Verdict)
	assert.Contains(t, res.Checks[1].Reason, "interrupted before this check")
}

// A check that would create objects in tenant namespaces outside the API
// lane is refused before anything runs.
func TestExecuteAllRefusesAnUnsafeLane(t *testing.T) {
	bad := checks.Check{ID: "NET-009", Area: checks.Network, Lane: checks.LaneNetwork,
		Creates: []checks.Footprint{{Where: checks.TenantNamespaces, Kinds: []string{"Pod"}}},
		Run: func(context.Context, *checks.Env) checks.Outcome {
			t.Error("ran")
			return checks.Outcome{}
		}}
	s := bareSession()
	err := s.ExecuteAll(context.Background(), []checks.Check{bad}, &heard{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "NET-009")
	assert.Empty(t, s.Results().Checks)
}
