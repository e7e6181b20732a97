package podsecurity

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// actor is one identity of an isolated tenant acting in one of its
// namespaces, with a client that impersonates it.
type actor struct {
	Tenant    string
	Namespace string
	Identity  checks.Identity
	Client    kubernetes.Interface
	// Warnings collects the API server's warnings to this client (PodSecurity
	// warns when a workload's pod template would violate the policy).
	Warnings *warnings
}

func (a actor) reportActor() reports.Actor {
	return reports.Actor{Tenant: a.Tenant, Namespace: a.Namespace, Identity: a.Identity.User}
}

// tenantActors returns every identity of every isolated tenant, in each of
// the tenant's namespaces.
func tenantActors(env *checks.Env) ([]actor, error) {
	var out []actor
	for _, t := range env.Topology.Isolated() {
		for _, id := range t.Identities {
			for _, ns := range t.Namespaces {
				a, err := newActor(env, t.Name, ns, id)
				if err != nil {
					return nil, err
				}
				out = append(out, a)
			}
		}
	}
	return out, nil
}

func newActor(env *checks.Env, tenant, ns string, id checks.Identity) (actor, error) {
	cfg := rest.CopyConfig(env.Kube.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: id.User, Groups: id.Groups}
	w := &warnings{}
	cfg.WarningHandler = w
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return actor{}, fmt.Errorf("client impersonating %s: %w", id, err)
	}
	return actor{Tenant: tenant, Namespace: ns, Identity: id, Client: c, Warnings: w}, nil
}

// warnings is a rest.WarningHandler that keeps what the server said.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) HandleWarningHeader(code int, agent, text string) {
	if code != 299 || text == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, text)
}

// matching returns the warnings that contain s.
func (w *warnings) matching(s string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, m := range w.msgs {
		if strings.Contains(m, s) {
			out = append(out, m)
		}
	}
	return out
}

// answer is the API server's reply to one request, as evidence.
type answer struct {
	Status  int
	Message string
	// Err is set when the request did not get an API answer at all
	// (transport, timeout): the attempt proves nothing.
	Err error
}

// statusOf turns a client error into an answer; success is 200/201.
func statusOf(err error, success int) answer {
	if err == nil {
		return answer{Status: success}
	}
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		s := st.Status()
		return answer{Status: int(s.Code), Message: s.Message}
	}
	return answer{Err: err}
}

// Detail renders the answer for an observation: "HTTP 403 Forbidden: <message>".
func (a answer) Detail() string {
	if a.Err != nil {
		return "no API answer: " + a.Err.Error()
	}
	s := fmt.Sprintf("HTTP %d %s", a.Status, http.StatusText(a.Status))
	if a.Message != "" {
		s += ": " + a.Message
	}
	return s
}

// Admitted is true for a 2xx answer.
func (a answer) Admitted() bool { return a.Err == nil && a.Status >= 200 && a.Status < 300 }

// Rejected is true when the API server refused the request (4xx).
func (a answer) Rejected() bool { return a.Err == nil && a.Status >= 400 && a.Status < 500 }

// parallel runs f for 0..n-1 with at most limit at once.
func parallel(n, limit int, f func(i int)) {
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			f(i)
		}()
	}
	wg.Wait()
}

// apiTimeout bounds one API request of a check.
const apiTimeout = 30 * time.Second

func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, apiTimeout)
}
