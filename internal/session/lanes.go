package session

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// Progress hears of each check as it starts and as it ends; i of n is its
// place in the selection. Lanes call it from their own goroutines.
type Progress interface {
	CheckStarted(c checks.Check, i, n int)
	CheckFinished(res reports.CheckResult, i, n int)
}

// ExecuteAll runs the selected checks, their lanes side by side
// (checks.Lanes) and each lane in order, and records every result. Once
// ctx ends, the checks no lane reached are recorded as not run.
func (s *Session) ExecuteAll(ctx context.Context, selected []checks.Check, p Progress) error {
	lanes, err := checks.Lanes(selected)
	if err != nil {
		return fmt.Errorf("schedule the checks: %w", err)
	}
	place := map[string]int{}
	for i, c := range selected {
		place[c.ID] = i + 1
	}
	var wg sync.WaitGroup
	for _, lane := range lanes {
		wg.Go(func() {
			for _, c := range lane {
				if ctx.Err() != nil {
					s.Record(checks.NotRun(c, "not run: the run was interrupted before this check"))
					continue
				}
				p.CheckStarted(c, place[c.ID], len(selected))
				res := s.Execute(ctx, c)
				p.CheckFinished(res, place[c.ID], len(selected))
			}
		})
	}
	wg.Wait()
	return nil
}

// byAreaThenID orders results as the registry orders checks, whatever
// order the lanes finished them in.
func byAreaThenID(a, b reports.CheckResult) int {
	return cmp.Or(cmp.Compare(a.Area, b.Area), cmp.Compare(a.ID, b.ID))
}

func sortResults(rs []reports.CheckResult) { slices.SortStableFunc(rs, byAreaThenID) }
