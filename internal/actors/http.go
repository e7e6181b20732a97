package actors

import (
	"fmt"
	"net/http"
	"strings"

	"k8s.io/client-go/rest"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
)

// HTTPActor is a plain HTTP client acting as one identity (impersonating
// it), for requests typed clients do not make: any path, server-side
// dry-run, watch, raw answers.
type HTTPActor struct {
	Identity checks.Identity
	Client   *http.Client
	// Base is the API server's URL, without a trailing slash.
	Base string
}

// HTTP returns the run's HTTP client acting as id, one per identity (its
// connections are reused); it has no client-side rate limit, so the
// caller bounds its concurrency.
func (m *Model) HTTP(id checks.Identity) (*HTTPActor, error) {
	key := id.User + "\x00" + strings.Join(id.Groups, "\x00")
	m.mu.Lock()
	defer m.mu.Unlock()
	if h, ok := m.http[key]; ok {
		return h.a, h.err
	}
	h := &httpEntry{}
	h.a, h.err = newHTTPActor(m.env.Kube.Config, id)
	m.http[key] = h
	return h.a, h.err
}

type httpEntry struct {
	a   *HTTPActor
	err error
}

func newHTTPActor(base *rest.Config, id checks.Identity) (*HTTPActor, error) {
	cfg := Unthrottled(base)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: id.User, Groups: id.Groups}
	c, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("HTTP client impersonating %s: %w", id, err)
	}
	u, _, err := rest.DefaultServerUrlFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("HTTP client impersonating %s: %w", id, err)
	}
	return &HTTPActor{Identity: id, Client: c, Base: strings.TrimSuffix(u.String(), "/")}, nil
}
