package runs

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/bulkhead-k8s/bulkhead/internal/kube"
)

// Survey is what a cluster holds of bulkhead's runs.
type Survey struct {
	Runs []Run
	// Unlabelled are bulkhead's objects without a run label: no run can
	// be shown to own them, so nothing removes them automatically.
	Unlabelled []Object
	Inventory  *Inventory
}

// Take finds every object matching selector (fixtures.ManagedSelector or
// RunSelector) and judges each run at time now.
func Take(ctx context.Context, c *kube.Clients, selector string, now time.Time) (*Survey, error) {
	inv, err := Find(ctx, c, selector)
	if inv == nil {
		return nil, err
	}
	s := &Survey{Inventory: inv}
	errs := []error{err}
	for id, objs := range ByRun(inv.Objects) {
		if id == "" {
			s.Unlabelled = objs
			continue
		}
		r, err := Judge(ctx, c, id, objs, now)
		errs = append(errs, err)
		s.Runs = append(s.Runs, r)
	}
	sort.Slice(s.Runs, func(i, j int) bool { return s.Runs[i].ID < s.Runs[j].ID })
	return s, errors.Join(errs...)
}

// InState returns the runs in state st.
func (s *Survey) InState(st State) []Run {
	var out []Run
	for _, r := range s.Runs {
		if r.State == st {
			out = append(out, r)
		}
	}
	return out
}
