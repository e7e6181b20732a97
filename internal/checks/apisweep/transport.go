package apisweep

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bulkhead-k8s/bulkhead/internal/actors"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/probing"
	"github.com/bulkhead-k8s/bulkhead/probes/wire"
)

// PodFacts is what an API probe pod said about itself.
type PodFacts struct {
	// TokenMounted: a ServiceAccount token is mounted in the pod.
	TokenMounted bool
	// TLS is how the pod's connection to the API server was secured.
	TLS string
}

// answered is what the real requests of a sweep brought back.
type answered struct {
	// answers and pods are by attempt: the answer (nil when none was
	// made) and, for in-pod requests, the pod ("ns/name") it came from.
	answers []*wire.APIResult
	pods    []string
	// facts are by pod.
	facts map[string]PodFacts
	// outputs are the raw outputs of every exec into a pod.
	outputs [][]byte
	stats   requestStats
}

type requestStats struct{ process, inPod, pods int }

// podAnswer is one pod's batch, answered.
type podAnswer struct {
	pod     string
	results []wire.APIResult
	facts   PodFacts
	outputs [][]byte
	err     error
}

// processAnswer is one request from bulkhead's process, answered.
type processAnswer struct {
	result wire.APIResult
	output []byte
}

// makeRequests makes every real request: from inside the API probe pods,
// one exec per pod, and from bulkhead's process (impersonating the
// identity). Each goroutine returns its own answer; they are merged here.
func makeRequests(ctx context.Context, env *checks.Env, sc Scope, attempts []Attempt) (answered, error) {
	out := answered{answers: make([]*wire.APIResult, len(attempts)), pods: make([]string, len(attempts)), facts: map[string]PodFacts{}}
	byPod := map[string][]int{}
	var podOrder []string
	var process []int
	for i, a := range attempts {
		switch a.Via {
		case ViaPod, ViaAnonymous:
			pod := sc.AnonymousPod
			if a.Via == ViaPod {
				ns, _, _ := strings.Cut(a.Identity.ServiceAccount, "/")
				pod = ns + "/" + sc.TokenPods[a.Identity.ServiceAccount]
			}
			if _, ok := byPod[pod]; !ok {
				podOrder = append(podOrder, pod)
			}
			byPod[pod] = append(byPod[pod], i)
			out.pods[i] = pod
			out.stats.inPod++
		case ViaImpersonation, ViaAdmin:
			process = append(process, i)
		}
	}
	out.stats.process, out.stats.pods = len(process), len(podOrder)

	inPod := make([]podAnswer, len(podOrder))
	fromProcess := make([]processAnswer, len(process))
	clients := newProcessClients(env)
	var wg sync.WaitGroup
	for j, pod := range podOrder {
		wg.Go(func() { inPod[j] = askInPod(ctx, env, pod, attempts, byPod[pod]) })
	}
	sem := make(chan struct{}, parallel)
	for j, i := range process {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			fromProcess[j] = clients.do(ctx, attempts[i])
		})
	}
	wg.Wait()

	var errs []error
	for _, pa := range inPod {
		out.outputs = append(out.outputs, pa.outputs...)
		if pa.err != nil {
			errs = append(errs, pa.err)
			continue
		}
		out.facts[pa.pod] = pa.facts
		for _, r := range pa.results {
			i, err := strconv.Atoi(r.ID)
			if err != nil || !slices.Contains(byPod[pa.pod], i) {
				errs = append(errs, fmt.Errorf("API probe in %s answered for unknown call %q", pa.pod, r.ID))
				continue
			}
			out.answers[i] = &r
		}
	}
	for j, i := range process {
		out.answers[i] = &fromProcess[j].result
		if fromProcess[j].output != nil {
			out.outputs = append(out.outputs, fromProcess[j].output)
		}
	}
	return out, errors.Join(errs...)
}

// askInPod sends a pod's share of the attempts as one `probe api` batch
// through the env's probe runner.
func askInPod(ctx context.Context, env *checks.Env, pod string, attempts []Attempt, idx []int) podAnswer {
	pa := podAnswer{pod: pod}
	req := wire.APIRequest{TimeoutMS: int(requestTimeout / time.Millisecond), Parallel: parallel}
	for _, i := range idx {
		a := attempts[i]
		auth := a.Auth
		if a.Via == ViaPod {
			auth = wire.AuthToken
		}
		req.Calls = append(req.Calls, wire.APICall{ID: strconv.Itoa(i), Method: a.Req.Method, Path: a.Req.Path, Body: a.Req.Body,
			DryRun: a.Req.DryRun, Auth: auth, Headers: a.Req.Headers, Watch: a.Req.Watch})
	}
	ns, name, _ := strings.Cut(pod, "/")
	ctx, cancel := context.WithTimeout(ctx, execTimeout)
	defer cancel()
	resp, err := recordingRunner(env, &pa.outputs).API(ctx, probing.Pod{Namespace: ns, Name: name}, req)
	if err != nil {
		pa.err = err
		return pa
	}
	pa.facts = PodFacts{TokenMounted: resp.TokenMounted, TLS: resp.TLS}
	pa.results = resp.Results
	return pa
}

// recordingRunner is the env's probe runner, recording every raw output
// into outputs when it is the real exec (tests assert no secret value
// reaches bulkhead's process). The runner calls back on the goroutine that
// called it: outputs belongs to that goroutine alone.
func recordingRunner(env *checks.Env, outputs *[][]byte) probing.Runner {
	r := env.Prober()
	e, ok := r.(*probing.Exec)
	if !ok {
		return r
	}
	rec := *e
	rec.Timeout = execTimeout
	rec.Outputs = func(raw []byte) { *outputs = append(*outputs, raw) }
	return &rec
}

// processClients make the requests of bulkhead's own process, each as
// the attempt's identity: a tenant's, or (ViaAdmin) the synthetic
// PositiveControl; the identity model holds one HTTP client per identity.
type processClients struct {
	actors *actors.Model
}

func newProcessClients(env *checks.Env) *processClients {
	return &processClients{actors: actors.Of(env)}
}

// do makes one request from bulkhead's process, after the safety guard.
func (p *processClients) do(ctx context.Context, a Attempt) processAnswer {
	start := time.Now()
	var pa processAnswer
	switch err := harmless(a); {
	case err != nil:
		pa.result = wire.APIResult{Error: err.Error()}
	case a.Req.Exec != nil:
		pa.result, pa.output = execStream(ctx, p.actors, a)
	default:
		pa.result = p.send(ctx, a)
	}
	pa.result.ID, pa.result.Started = a.Req.Address(), start.UTC()
	pa.result.LatencyMS = float64(time.Since(start).Microseconds()) / 1000
	return pa
}

// send makes one HTTP request as the attempt's identity.
func (p *processClients) send(ctx context.Context, a Attempt) wire.APIResult {
	var res wire.APIResult
	h, err := p.actors.HTTP(a.Identity)
	if err != nil {
		res.Error = "build client: " + err.Error()
		return res
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	path := a.Req.Path
	if a.Req.DryRun {
		if strings.Contains(path, "?") {
			path += "&dryRun=All"
		} else {
			path += "?dryRun=All"
		}
	}
	var body io.Reader
	if len(a.Req.Body) > 0 {
		body = bytes.NewReader(a.Req.Body)
	}
	req, err := http.NewRequestWithContext(ctx, a.Req.Method, h.Base+path, body)
	if err != nil {
		res.Error = "build request: " + err.Error()
		return res
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		ct := "application/json"
		if a.Req.Method == http.MethodPatch {
			ct = "application/merge-patch+json"
		}
		req.Header.Set("Content-Type", ct)
	}
	resp, err := h.Client.Do(req)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer resp.Body.Close()
	res.Code = resp.StatusCode
	wire.ReadAnswer(ctx, &res, resp.Body, a.Req.Watch)
	return res
}
