// Package session runs bulkhead against one cluster: it provisions the
// tenants and probe pods of a run, executes checks, collects their results,
// and removes everything the run created. Both front ends (the e2e suites and
// the bulkhead CLI) drive a Session; neither holds check logic.
package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/actors"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/config"
	"github.com/bulkhead-k8s/bulkhead/internal/kube"
	"github.com/bulkhead-k8s/bulkhead/internal/runs"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// Options configure a Session.
type Options struct {
	Clients *kube.Clients
	// RunID names this run's objects; generated when empty.
	RunID string
	// ProbeImage is the image probe pods run.
	ProbeImage      string
	ImagePullSecret string
	// Disposable is true when bulkhead created the cluster: probe pods may
	// run on control-plane nodes and checks may install cluster-level
	// fixtures (a metadata decoy).
	Disposable bool
	// CleanLeftovers removes, at start, earlier runs that were left behind
	// (their Lease expired). Only for a kind cluster this process created
	// or reused: elsewhere that is for `bulkhead cleanup` to do, after
	// showing what it would remove. Live runs are never touched.
	CleanLeftovers bool
	// Tenants to create; the reference tenants when empty and BYO is nil.
	Tenants []fixtures.TenantSpec
	// BYO runs against tenants that already exist (a tenant config file)
	// instead of creating reference tenants.
	BYO *config.File
	// ProbesPerNamespace defaults to 2 (spread over nodes).
	ProbesPerNamespace int
	Timing             checks.Timing
	// Allow is what the user allowed beyond what is safe on any cluster.
	Allow checks.Allowances
	// ReadyTimeout bounds the wait for probe pods and Service endpoints.
	ReadyTimeout time.Duration
	// CleanupTimeout bounds the wait for namespaces to be gone.
	CleanupTimeout time.Duration
	Log            *slog.Logger
	Frontend       string
	Build          reports.Build
	// Cluster is the cluster description known to the caller (context,
	// disposable); Start fills in what it can read from the cluster.
	Cluster reports.Cluster
	// Audit records what each check creates and compares it with the
	// check's declared footprint (Undeclared); the e2e suites turn it on.
	Audit bool
}

func (o *Options) defaults() {
	if o.RunID == "" {
		o.RunID = fixtures.NewRunID()
	}
	if len(o.Tenants) == 0 && o.BYO == nil {
		o.Tenants = fixtures.ReferenceTenants(o.RunID)
	}
	if o.ProbesPerNamespace == 0 {
		o.ProbesPerNamespace = 2
	}
	if o.Timing == (checks.Timing{}) {
		o.Timing = checks.DefaultTiming()
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 3 * time.Minute
	}
	if o.CleanupTimeout == 0 {
		o.CleanupTimeout = 3 * time.Minute
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// Session is one run against one cluster.
type Session struct {
	opts    Options
	env     *checks.Env
	applier *kube.Applier

	mu      sync.Mutex
	results reports.Results

	lease *runs.Holder

	audit      *audit
	kinds      func(schema.GroupVersionResource) string
	undeclared []string

	closeOnce sync.Once
	closeErr  error
	abortOnce sync.Once
}

// New prepares a session without touching the cluster. Its RunID is fixed
// from here on, so a front end can arrange clean-up (Close) before Start.
func New(opts Options) (*Session, error) {
	opts.defaults()
	if opts.Clients == nil {
		return nil, errors.New("session: no cluster clients")
	}
	if err := fixtures.ValidateRunID(opts.RunID); err != nil {
		return nil, err
	}
	if opts.ProbeImage == "" {
		return nil, errors.New("session: no probe image")
	}
	s := &Session{opts: opts}
	if opts.Audit {
		s.audit = &audit{}
		var err error
		if s.opts.Clients, s.kinds, err = auditing(opts.Clients, s.audit); err != nil {
			return nil, err
		}
		opts.Clients = s.opts.Clients
	}
	s.applier = kube.NewApplier(opts.Clients)
	s.env = &checks.Env{Kube: opts.Clients, RunID: opts.RunID, ProbeImage: opts.ProbeImage,
		Disposable: opts.Disposable, Timing: opts.Timing, Log: opts.Log, Allow: opts.Allow}
	s.results = reports.Results{Schema: reports.Schema, Run: reports.RunInfo{
		ID: opts.RunID, Bulkhead: opts.Build, Frontend: opts.Frontend, ProbeImage: opts.ProbeImage, Cluster: opts.Cluster,
	}}
	s.results.Run.Cluster.Disposable = opts.Disposable
	return s, nil
}

// RunID is the run's ID.
func (s *Session) RunID() string { return s.opts.RunID }

// Env is what checks run against.
func (s *Session) Env() *checks.Env { return s.env }

// Applier creates and deletes objects for checks and negative controls.
func (s *Session) Applier() *kube.Applier { return s.applier }

// Start checks the cluster is usable, provisions tenants and probe pods, and
// records run metadata. On error everything created so far is removed.
func (s *Session) Start(ctx context.Context) (err error) {
	s.results.Run.Started = time.Now().UTC()
	log := s.opts.Log
	version, err := s.opts.Clients.Ping(ctx)
	if err != nil {
		return err
	}
	log.Info("cluster answers", "server", s.opts.Clients.Server, "version", version, "run", s.opts.RunID)
	info, err := describeCluster(ctx, s.opts.Clients)
	if err != nil {
		return err
	}
	info.Context, info.Server, info.Disposable = s.opts.Cluster.Context, s.opts.Clients.Server, s.opts.Disposable
	if info.Context == "" {
		info.Context = s.opts.Clients.Context
	}
	s.results.Run.Cluster = info

	defer func() {
		if err != nil {
			if cerr := s.Close(context.WithoutCancel(ctx)); cerr != nil {
				err = errors.Join(err, fmt.Errorf("clean up after failed start: %w", cerr))
			}
		}
	}()
	// The Lease comes first: from the run's first object on, `bulkhead
	// cleanup` and other runs' start-up can tell it is live.
	if err := s.holdLease(ctx); err != nil {
		return err
	}
	if err := s.handleLeftovers(ctx); err != nil {
		return err
	}
	var top checks.Topology
	if s.opts.BYO != nil {
		top, err = s.provisionBYO(ctx, s.opts.BYO)
	} else {
		top, err = s.provision(ctx, s.opts.Tenants)
	}
	if err != nil {
		return err
	}
	s.env.Topology = top
	// Every identity must be able to act in its own tenant, or its
	// "denied" answers would mean nothing (a misspelled user is denied
	// everything).
	if err := actors.Of(s.env).Validate(ctx); err != nil {
		return err
	}
	for _, t := range top.Tenants {
		var ids []string
		for _, id := range t.Identities {
			ids = append(ids, id.String())
		}
		s.results.Run.Tenants = append(s.results.Run.Tenants, reports.Tenant{
			Name: t.Name, Namespaces: t.Namespaces, Isolated: t.Isolated, Reference: t.Reference, Identities: ids,
		})
	}
	return nil
}

// holdLease creates the run's control namespace and its Lease, renewed
// until Close.
func (s *Session) holdLease(ctx context.Context) error {
	for _, t := range fixtures.OwnTenants(s.opts.RunID) {
		if t.Name != fixtures.TenantControl {
			continue
		}
		objs, err := fixtures.RenderTenant(s.opts.RunID, t)
		if err != nil {
			return err
		}
		for _, o := range objs {
			if o.GetKind() == "Namespace" {
				if err := s.applier.Create(ctx, o); err != nil {
					return fmt.Errorf("create the run's control namespace: %w", err)
				}
			}
		}
	}
	h, err := runs.Hold(ctx, s.opts.Clients, s.opts.RunID, s.opts.Frontend, s.opts.Log)
	if err != nil {
		return err
	}
	s.lease = h
	return nil
}

// handleLeftovers looks at the other runs on the cluster. Live runs (their
// Lease renewed) are left alone. Runs left behind are removed when asked
// (a kind cluster this process created or reused); otherwise it only says
// so, for `bulkhead cleanup` to do.
func (s *Session) handleLeftovers(ctx context.Context) error {
	nss, err := s.opts.Clients.Core.CoreV1().Namespaces().List(ctx, listBy(fixtures.ManagedSelector()))
	if err != nil {
		return fmt.Errorf("list bulkhead namespaces: %w", err)
	}
	byRun := map[string][]runs.Object{}
	for _, ns := range nss.Items {
		id := ns.Labels[fixtures.LabelRun]
		if id == "" || id == s.opts.RunID {
			continue
		}
		byRun[id] = append(byRun[id], runs.Object{Name: ns.Name, Created: ns.CreationTimestamp.Time})
	}
	var left, live []string
	for id, objs := range byRun {
		r, err := runs.Judge(ctx, s.opts.Clients, id, objs, time.Now())
		if err != nil {
			return err
		}
		if r.State == runs.Live {
			live = append(live, id)
			continue
		}
		left = append(left, id)
	}
	if len(live) > 0 {
		s.opts.Log.Info("other bulkhead runs are live on this cluster; they are left alone", "runs", live)
	}
	if len(left) == 0 {
		return nil
	}
	if !s.opts.CleanLeftovers {
		s.opts.Log.Warn("earlier bulkhead runs were left behind (their Lease expired); `bulkhead cleanup` removes them", "runs", left)
		return nil
	}
	for _, id := range left {
		inv, err := runs.Find(ctx, s.opts.Clients, fixtures.RunSelector(id))
		if err != nil {
			return fmt.Errorf("find what run %s left behind: %w", id, err)
		}
		rep, err := runs.Remove(ctx, s.opts.Clients, inv.Objects, s.opts.CleanupTimeout)
		s.opts.Log.Info("removed a run that was left behind", "run", id, "namespaces", rep.Namespaces, "objects", len(rep.Objects))
		if err != nil {
			return fmt.Errorf("remove run %s, left behind: %w", id, err)
		}
	}
	return nil
}

// Execute runs one check and records its result.
func (s *Session) Execute(ctx context.Context, c checks.Check) reports.CheckResult {
	s.opts.Log.Debug("check", "id", c.ID, "title", c.Title())
	var res reports.CheckResult
	if s.audit == nil {
		res = checks.Execute(ctx, c, s.env)
	} else {
		res = checks.Execute(auditedAs(ctx, c.ID), c, s.env)
		u := s.audit.undeclared(c, s.env.Topology, s.kinds)
		res.Notes = append(res.Notes, u...)
		s.mu.Lock()
		s.undeclared = append(s.undeclared, u...)
		s.mu.Unlock()
	}
	s.Record(res)
	// Front ends show verdicts themselves (progress lines, test output).
	s.opts.Log.Debug("verdict", "id", c.ID, "verdict", res.Verdict, "reason", res.Reason)
	return res
}

// Undeclared lists what checks created that their footprint does not
// declare (with Options.Audit).
func (s *Session) Undeclared() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.undeclared)
}

// Audited is how many creates of checks the audit saw (with Options.Audit):
// a run of checks that declare creates and saw none means the audit is
// blind, not that the declarations hold.
func (s *Session) Audited() int {
	if s.audit == nil {
		return 0
	}
	return s.audit.count()
}

// Record adds a result (a check run elsewhere, or a skipped check).
func (s *Session) Record(res reports.CheckResult) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.results.Checks = append(s.results.Checks, res)
}

// SetSelection records how the run was filtered (areas, labels, profile).
func (s *Session) SetSelection(sel map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.results.Run.Selection = sel
}

// Results returns a copy of the results so far, with Finished set to now.
func (s *Session) Results() *reports.Results {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.results
	r.Checks = append([]reports.CheckResult(nil), s.results.Checks...)
	sortResults(r.Checks)
	r.Run.Finished = time.Now().UTC()
	return &r
}

// Close removes everything carrying this run's labels, of every kind the
// API server serves, and waits until it is gone; then it stops renewing the
// run's Lease (which went with the control namespace). It is safe to call
// more than once.
func (s *Session) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		defer s.lease.Stop()
		ctx, cancel := context.WithTimeout(ctx, s.opts.CleanupTimeout+30*time.Second)
		defer cancel()
		inv, err := runs.Find(ctx, s.opts.Clients, fixtures.RunSelector(s.opts.RunID))
		var rep runs.Removed
		if inv != nil {
			var rerr error
			rep, rerr = runs.Remove(ctx, s.opts.Clients, inv.Objects, s.opts.CleanupTimeout)
			err = errors.Join(err, rerr)
		}
		s.opts.Log.Info("cleaned up run", "run", s.opts.RunID, "namespaces", rep.Namespaces, "objects", len(rep.Objects))
		if err != nil {
			s.closeErr = fmt.Errorf("clean up run %s: %w", s.opts.RunID, err)
		}
	})
	return s.closeErr
}

// AbortTimeout bounds Abort.
const AbortTimeout = 20 * time.Second

// Abort is the fast undo of a second Ctrl-C: it starts the deletion of
// everything carrying the run's labels (objects in tenant namespaces,
// cluster-scoped objects, the run's own namespaces) without waiting for
// any of it to be gone, and stops renewing the Lease. It needs no
// knowledge of what checks created: whatever carries the run's labels
// goes. It returns within AbortTimeout and may run while Close does.
func (s *Session) Abort(ctx context.Context) error {
	var err error
	s.abortOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), AbortTimeout)
		defer cancel()
		inv, ferr := runs.Find(ctx, s.opts.Clients, fixtures.RunSelector(s.opts.RunID))
		err = ferr
		if inv != nil {
			_, rerr := runs.Remove(ctx, s.opts.Clients, inv.Objects, 0)
			err = errors.Join(err, rerr)
		}
		go s.lease.Stop() // the renewal may be mid-request; do not wait for it
		if err != nil {
			err = fmt.Errorf("undo run %s: %w", s.opts.RunID, err)
		}
	})
	return err
}
