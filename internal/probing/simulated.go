package probing

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/bulkhead-k8s/bulkhead/probes/wire"
)

// Simulated is a Runner for unit tests: answers come from functions of the
// source, the target and the call number (per source, from 1; under Rounds
// the round's number, so a Retry in a round is answered as that round
// was), so a test can make a path leak in round 2 only, a pod's exec fail,
// or a target go dead, without a cluster.
type Simulated struct {
	// ConnectFunc answers one connect target; nil answers every target
	// with a timeout.
	ConnectFunc func(src Pod, t wire.ConnectTarget, call int) wire.ConnectResult
	// MetadataFunc answers one metadata endpoint.
	MetadataFunc func(src Pod, e wire.MetadataEndpoint, call int) wire.MetadataResult
	// APIFunc answers one API call.
	APIFunc func(src Pod, c wire.APICall, call int) wire.APIResult
	// CapsFunc answers a capability query; nil: TCP and UDP only.
	CapsFunc func(src Pod) wire.Capabilities
	// ExecErr, when it returns an error, makes that exec fail.
	ExecErr func(src Pod, mode string, call int) error

	mu    sync.Mutex
	calls map[string]int
}

func (s *Simulated) next(ctx context.Context, src Pod, mode string) (int, error) {
	s.mu.Lock()
	if s.calls == nil {
		s.calls = map[string]int{}
	}
	s.calls[mode+" "+src.String()]++
	n := s.calls[mode+" "+src.String()]
	s.mu.Unlock()
	if r, ok := ctx.Value(roundKey{}).(int); ok {
		n = r
	}
	if s.ExecErr != nil {
		if err := s.ExecErr(src, mode, n); err != nil {
			return n, &ExecError{Pod: src, Mode: mode, Attempts: 1, Err: err}
		}
	}
	return n, nil
}

// Calls is how many execs of mode src received.
func (s *Simulated) Calls(src Pod, mode string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[mode+" "+src.String()]
}

func identity(src Pod) wire.Identity { return wire.Identity{Pod: src.Name, Namespace: src.Namespace} }

// Connect answers every target with ConnectFunc.
func (s *Simulated) Connect(ctx context.Context, src Pod, req wire.ConnectRequest) (*wire.ConnectResponse, error) {
	n, err := s.next(ctx, src, "connect")
	if err != nil {
		return nil, err
	}
	out := &wire.ConnectResponse{Version: wire.Version, Source: identity(src)}
	for _, t := range req.Targets {
		r := wire.ConnectResult{Outcome: wire.Timeout}
		if s.ConnectFunc != nil {
			r = s.ConnectFunc(src, t, n)
		}
		r.ID = t.ID
		if r.Started.IsZero() {
			r.Started = time.Now().UTC()
		}
		out.Results = append(out.Results, r)
	}
	return out, ctx.Err()
}

// Metadata answers every endpoint with MetadataFunc.
func (s *Simulated) Metadata(ctx context.Context, src Pod, req wire.MetadataRequest) (*wire.MetadataResponse, error) {
	n, err := s.next(ctx, src, "metadata")
	if err != nil {
		return nil, err
	}
	if s.MetadataFunc == nil {
		return nil, errors.New("simulated runner: no MetadataFunc")
	}
	out := &wire.MetadataResponse{Version: wire.Version, Source: identity(src)}
	for _, e := range req.Endpoints {
		r := s.MetadataFunc(src, e, n)
		r.ID = e.ID
		out.Results = append(out.Results, r)
	}
	return out, ctx.Err()
}

// API answers every call with APIFunc.
func (s *Simulated) API(ctx context.Context, src Pod, req wire.APIRequest) (*wire.APIResponse, error) {
	n, err := s.next(ctx, src, "api")
	if err != nil {
		return nil, err
	}
	if s.APIFunc == nil {
		return nil, errors.New("simulated runner: no APIFunc")
	}
	out := &wire.APIResponse{Version: wire.Version, Source: identity(src)}
	for _, c := range req.Calls {
		r := s.APIFunc(src, c, n)
		r.ID = c.ID
		out.Results = append(out.Results, r)
	}
	return out, ctx.Err()
}

// Caps answers with CapsFunc.
func (s *Simulated) Caps(ctx context.Context, src Pod) (*wire.Capabilities, error) {
	if _, err := s.next(ctx, src, "caps"); err != nil {
		return nil, err
	}
	c := wire.Capabilities{Version: wire.Version, Source: identity(src)}
	if s.CapsFunc != nil {
		c = s.CapsFunc(src)
	}
	return &c, ctx.Err()
}
