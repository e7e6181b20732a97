package checks

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/bulkhead-k8s/bulkhead/internal/kube"
	"github.com/bulkhead-k8s/bulkhead/internal/probing"
)

// Env is everything a check may use: clients, the tenants and probe pods of
// this run, and timing. The session builds it; checks only read it.
type Env struct {
	Kube     *kube.Clients
	RunID    string
	Topology Topology
	// ProbeImage is the image probe pods run (checks that start pods use it).
	ProbeImage string
	// Disposable is true when bulkhead created the cluster; only then may a
	// check change cluster-level things (e.g. install a metadata decoy).
	Disposable bool
	Timing     Timing
	Log        *slog.Logger
	// Probes runs batches in probe pods (the real exec, or a simulation in
	// unit tests); Prober returns it, built from Kube when unset.
	Probes probing.Runner
	// Allow is what the user allowed beyond what is safe on any cluster.
	Allow Allowances

	mu   sync.Mutex
	memo map[string]*memoEntry
}

// Allowances are what a run may do in tenant namespaces beyond what is
// safe on a production cluster; each is a CLI flag.
type Allowances struct {
	// QuotaFill lets the quota checks fill a bring-your-own tenant's real
	// quota up to its bound, for seconds (--allow-quota-fill). Off, they
	// prove the bounds without consuming the tenant's headroom.
	QuotaFill bool
	// NoNodePorts keeps EXP-004 from publishing a NodePort (--no-node-ports).
	NoNodePorts bool
}

// Timing bounds the waits of checks.
type Timing struct {
	// ConnectTimeout is the per-probe deadline inside the pod.
	ConnectTimeout time.Duration
	// Enforcement bounds the settle phase: how long probing repeats until
	// what bulkhead set up itself (its new probe pods, its own policies and
	// Services) has taken effect. Tenants' own policies get no such grace.
	Enforcement time.Duration
	// Rounds is how many probe rounds count once settled: a path that must
	// be blocked and connects in any of them is a leak.
	Rounds int
	// Pause between rounds (0: the engine's default).
	Pause time.Duration
}

// DefaultTiming suits a kind cluster with Cilium and most real clusters.
func DefaultTiming() Timing {
	return Timing{ConnectTimeout: 2 * time.Second, Enforcement: 60 * time.Second, Rounds: DefaultRounds}
}

// DefaultRounds is how many rounds count by default.
const DefaultRounds = 3

// RoundsOptions are the probing rounds this timing asks for.
func (t Timing) RoundsOptions() probing.RoundsOptions {
	return probing.RoundsOptions{Count: t.Rounds, SettleTimeout: t.Enforcement, Pause: t.Pause}
}

type memoEntry struct {
	once sync.Once
	val  any
	err  error
}

// Memo computes f once per key and env; later calls return the same value.
// Checks that share expensive work (one network matrix serves several checks)
// use it; a negative control probes afresh on a Derived env.
func Memo[T any](env *Env, key string, f func() (T, error)) (T, error) {
	env.mu.Lock()
	if env.memo == nil {
		env.memo = map[string]*memoEntry{}
	}
	e, ok := env.memo[key]
	if !ok {
		e = &memoEntry{}
		env.memo[key] = e
	}
	env.mu.Unlock()
	e.once.Do(func() { e.val, e.err = f() })
	if e.err != nil {
		var zero T
		return zero, e.err
	}
	v, ok := e.val.(T)
	if !ok {
		var zero T
		return zero, fmt.Errorf("memo %q holds %T", key, e.val)
	}
	return v, nil
}

// Logger returns env.Log or a discarding logger.
func (env *Env) Logger() *slog.Logger {
	if env.Log != nil {
		return env.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Prober is the runner checks probe with: env.Probes, or the real exec
// through the API server.
func (env *Env) Prober() probing.Runner {
	env.mu.Lock()
	defer env.mu.Unlock()
	if env.Probes == nil {
		env.Probes = ExecRunner(env.Kube)
	}
	return env.Probes
}

// ExecRunner is the real probe runner: the probe program in a pod's probe
// container, through the API server's exec.
func ExecRunner(c *kube.Clients) *probing.Exec {
	return &probing.Exec{Run: func(ctx context.Context, p probing.Pod, stdin []byte, args ...string) ([]byte, error) {
		out, err := c.Exec(ctx, p.Namespace, p.Name, ProbeContainer, append([]string{"/probe"}, args...), stdin)
		if err != nil {
			return out, fmt.Errorf("exec /probe %v in %s: %w", args, p, err)
		}
		return out, nil
	}}
}

// ProbeContainer is the container name of every probe pod.
const ProbeContainer = "probe"

// Derive returns a copy of env with its own (empty) memo, so a negative
// control or a benchmark can probe afresh and change Timing without
// touching the run's shared results.
func (env *Env) Derive() *Env {
	return &Env{Kube: env.Kube, RunID: env.RunID, Topology: env.Topology, ProbeImage: env.ProbeImage,
		Disposable: env.Disposable, Timing: env.Timing, Log: env.Log, Probes: env.Probes, Allow: env.Allow}
}
