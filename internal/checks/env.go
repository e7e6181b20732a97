package checks

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/bulkhead-k8s/bulkhead/internal/kube"
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

	mu   sync.Mutex
	memo map[string]*memoEntry
}

// Timing bounds the waits of checks.
type Timing struct {
	// ConnectTimeout is the per-probe deadline inside the pod.
	ConnectTimeout time.Duration
	// Enforcement is how long a check keeps re-probing paths that do not yet
	// match the expectation (policies take a moment to be programmed).
	Enforcement time.Duration
}

// DefaultTiming suits a kind cluster with Cilium and most real clusters.
func DefaultTiming() Timing {
	return Timing{ConnectTimeout: 2 * time.Second, Enforcement: 60 * time.Second}
}

type memoEntry struct {
	once sync.Once
	val  any
	err  error
}

// Memo computes f once per key and env; later calls return the same value.
// Checks that share expensive work (one network matrix serves several checks)
// use it. Forget drops a key, so a negative control can observe a change.
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

// Forget drops memoized values whose key is one of keys (all when none given).
func (env *Env) Forget(keys ...string) {
	env.mu.Lock()
	defer env.mu.Unlock()
	if len(keys) == 0 {
		env.memo = nil
		return
	}
	for _, k := range keys {
		delete(env.memo, k)
	}
}

// Logger returns env.Log or a discarding logger.
func (env *Env) Logger() *slog.Logger {
	if env.Log != nil {
		return env.Log
	}
	return slog.New(slog.DiscardHandler)
}

// ExecProbe runs the probe program in pod with args, feeding stdin, and
// returns its standard output.
func (env *Env) ExecProbe(ctx context.Context, p ProbePod, stdin []byte, args ...string) ([]byte, error) {
	cmd := append([]string{"/probe"}, args...)
	out, err := env.Kube.Exec(ctx, p.Namespace, p.Name, ProbeContainer, cmd, stdin)
	if err != nil {
		return nil, fmt.Errorf("probe %s in %s/%s: %w", args, p.Namespace, p.Name, err)
	}
	return out, nil
}

// ProbeContainer is the container name of every probe pod.
const ProbeContainer = "probe"

// Derive returns a copy of env with its own (empty) memo, so a negative
// control or a benchmark can probe afresh and change Timing without
// touching the run's shared results.
func (env *Env) Derive() *Env {
	return &Env{Kube: env.Kube, RunID: env.RunID, Topology: env.Topology, ProbeImage: env.ProbeImage,
		Disposable: env.Disposable, Timing: env.Timing, Log: env.Log}
}
