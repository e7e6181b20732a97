package metadata

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/bulkhead-k8s/bulkhead/fixtures/decoy"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/metadata/endpoints"
	"github.com/bulkhead-k8s/bulkhead/probes/wire"
)

// Key is the memo key of the shared probing; negative-control tests forget
// it (or use a derived env) to probe again.
const Key = "metadata/probe"

// Result is one probing of the catalogue from every probe pod, judged for
// both checks.
type Result struct {
	Evaluation
	Samples []Sample
	Live    Live
	Rounds  int
	Execs   int
	Elapsed time.Duration
}

// Shared returns the run's metadata probing, doing it on first use.
func Shared(ctx context.Context, env *checks.Env) (*Result, error) {
	return checks.Memo(env, Key, func() (*Result, error) { return probeAll(ctx, env) })
}

// probeAll installs the decoy where allowed (and removes it again before
// returning, unless an outer caller installed it for this run), then
// probes in rounds until every observation matches or the enforcement
// deadline passes.
func probeAll(ctx context.Context, env *checks.Env) (_ *Result, err error) {
	live, d, err := PrepareLive(ctx, env)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := d.Cleanup(context.WithoutCancel(ctx)); cerr != nil {
			err = errors.Join(err, fmt.Errorf("remove the metadata decoy: %w", cerr))
		}
	}()
	return probeRounds(ctx, env, live)
}

// PrepareLive decides the positive control: on a kind cluster bulkhead
// created, it installs (or reuses) the run's decoy; elsewhere it says why
// there is none. The caller must call Cleanup on the returned decoy (a nil
// decoy, or one the run installed earlier, cleans up nothing).
func PrepareLive(ctx context.Context, env *checks.Env) (Live, *decoy.Decoy, error) {
	if !env.Disposable {
		return Live{NoDecoy: "no decoy on clusters bulkhead did not create"}, nil, nil
	}
	cl, notKind, err := decoy.Detect(ctx, env.Kube)
	if err != nil {
		return Live{}, nil, fmt.Errorf("find the kind cluster for the metadata decoy: %w", err)
	}
	if notKind != "" {
		return Live{NoDecoy: "the cluster was created by bulkhead but the decoy needs kind on the local Docker engine: " + notKind}, nil, nil
	}
	d, err := decoy.Install(ctx, cl, decoy.Options{RunID: env.RunID, Image: env.ProbeImage, Addresses: endpoints.Addresses(), Log: env.Logger()})
	if err != nil {
		return Live{}, nil, err
	}
	return LiveFor(d), d, nil
}

// LiveFor describes an installed decoy for evaluation.
func LiveFor(d *decoy.Decoy) Live {
	info := &DecoyInfo{Marker: d.RunID, Container: d.Container, IP: d.IP.String(), Skipped: d.Skipped}
	for _, a := range d.Addresses {
		info.Addresses = append(info.Addresses, a.String())
	}
	live := Live{Decoy: info}
	for _, n := range d.Cluster.Nodes {
		if s, ok := d.NodeCheck[n.Name]; ok {
			live.NodeVantage = append(live.NodeVantage, n.Name+": "+s)
		}
	}
	return live
}

// Request is what a pod of the given kind is sent. Control pods try the
// credential endpoints only against the decoy: on a real cluster they would
// fetch the node's real credentials, which bulkhead never does on purpose.
func Request(live Live, control bool, timeout time.Duration) wire.MetadataRequest {
	req := wire.MetadataRequest{TimeoutMS: int(timeout / time.Millisecond)}
	for _, e := range endpoints.All() {
		if control && e.Credentials && live.Decoy == nil {
			continue
		}
		req.Endpoints = append(req.Endpoints, e.Wire)
	}
	if live.Decoy != nil {
		direct := endpoints.All()[0].Wire
		direct.ID, direct.Host = DirectID, live.Decoy.IP
		req.Endpoints = append(req.Endpoints, direct)
	}
	return req
}

func probeRounds(ctx context.Context, env *checks.Env, live Live) (*Result, error) {
	pods := env.Topology.Probes
	if len(pods) == 0 {
		return nil, fmt.Errorf("no probe pods in this run")
	}
	cat := endpoints.All()
	res := &Result{Live: live}
	start := time.Now()
	deadline := start.Add(env.Timing.Enforcement)
	for {
		samples, err := ProbeOnce(ctx, env, live, pods)
		res.Execs += len(pods)
		if err != nil {
			return nil, err
		}
		res.Rounds++
		res.Samples = samples
		res.Evaluation = Evaluate(env.Topology, cat, samples, live)
		res.Elapsed = time.Since(start)
		if allOK(res.Evaluation) || time.Now().After(deadline) {
			break
		}
		env.Logger().Info("metadata: observations not yet as expected, probing again", "round", res.Rounds, "deadline", time.Until(deadline).Round(time.Second))
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	for _, out := range []*checks.Outcome{&res.Endpoints, &res.Credentials} {
		for i := range out.Observations {
			out.Observations[i].Attempts = res.Rounds
		}
	}
	note := fmt.Sprintf("%d endpoints from %d probe pods in %d round(s), %d exec round trips, %s",
		len(cat), len(pods), res.Rounds, res.Execs, res.Elapsed.Round(10*time.Millisecond))
	res.Endpoints.Notes = append(res.Endpoints.Notes, note)
	res.Credentials.Notes = append(res.Credentials.Notes, note)
	return res, nil
}

func allOK(ev Evaluation) bool {
	for _, out := range []checks.Outcome{ev.Endpoints, ev.Credentials} {
		for _, o := range out.Observations {
			if !o.OK {
				return false
			}
		}
	}
	return true
}

// ProbeOnce sends the catalogue to every pod once (one exec each, in
// parallel). Negative-control tests use it to wait for a fault to take effect.
func ProbeOnce(ctx context.Context, env *checks.Env, live Live, pods []checks.ProbePod) ([]Sample, error) {
	out := make([]Sample, len(pods))
	errs := make([]error, len(pods))
	var wg sync.WaitGroup
	for i, p := range pods {
		tn, _ := env.Topology.Tenant(p.Tenant)
		req := Request(live, !tn.Isolated, env.Timing.ConnectTimeout)
		wg.Go(func() {
			resp, err := exec(ctx, env, p, req)
			if err != nil {
				errs[i] = err
				return
			}
			s := Sample{Pod: p, Results: map[string]wire.MetadataResult{}}
			for _, r := range resp.Results {
				s.Results[r.ID] = r
			}
			for _, e := range req.Endpoints {
				if _, ok := s.Results[e.ID]; !ok {
					errs[i] = fmt.Errorf("probe in %s/%s did not answer for endpoint %s", p.Namespace, p.Name, e.ID)
					return
				}
			}
			out[i] = s
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func exec(ctx context.Context, env *checks.Env, p checks.ProbePod, req wire.MetadataRequest) (*wire.MetadataResponse, error) {
	// Up to three sequential steps per endpoint, each under the timeout.
	ctx, cancel := context.WithTimeout(ctx, 4*env.Timing.ConnectTimeout+30*time.Second)
	defer cancel()
	return env.Prober().Metadata(ctx, p.Pod(), req)
}
