// Package kube builds Kubernetes clients from a kubeconfig and runs commands
// in pods. Every client bulkhead uses comes from here, so the kubeconfig and
// context are always the ones the user named, never an ambient default.
package kube

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/remotecommand"
)

// Clients are the API clients for one cluster.
type Clients struct {
	Config  *rest.Config
	Core    kubernetes.Interface
	Dynamic dynamic.Interface
	// Kubeconfig and Context are what the clients were built from ("" means
	// the default loading rules and the current context).
	Kubeconfig string
	Context    string
	// Server is the API server URL.
	Server string
}

// Load builds clients from a kubeconfig file and context. An empty path uses
// the standard loading rules ($KUBECONFIG, ~/.kube/config).
func Load(kubeconfig, context string) (*Clients, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: context}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	raw, err := cc.RawConfig()
	if err != nil {
		return nil, fmt.Errorf("read kubeconfig %s: %w", describePath(kubeconfig), err)
	}
	if context == "" {
		context = raw.CurrentContext
	}
	if context != "" {
		if _, ok := raw.Contexts[context]; !ok {
			return nil, fmt.Errorf("kubeconfig %s has no context %q (it has: %s)", describePath(kubeconfig), context, strings.Join(contextNames(raw.Contexts), ", "))
		}
	}
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s, context %q: %w", describePath(kubeconfig), context, err)
	}
	c, err := FromConfig(cfg)
	if err != nil {
		return nil, err
	}
	c.Kubeconfig, c.Context = kubeconfig, context
	return c, nil
}

// FromConfig builds clients from a rest.Config.
func FromConfig(cfg *rest.Config) (*Clients, error) {
	cfg = rest.CopyConfig(cfg)
	// Checks fan out; the default 5 QPS would serialise them.
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	core, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("build Kubernetes client for %s: %w", cfg.Host, err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("build dynamic client for %s: %w", cfg.Host, err)
	}
	return &Clients{Config: cfg, Core: core, Dynamic: dyn, Server: cfg.Host}, nil
}

// Impersonate returns clients that act as user (and groups) via impersonation.
func (c *Clients) Impersonate(user string, groups ...string) (*Clients, error) {
	cfg := rest.CopyConfig(c.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	ic, err := FromConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("impersonate %s: %w", user, err)
	}
	ic.Kubeconfig, ic.Context = c.Kubeconfig, c.Context
	return ic, nil
}

// Ping asks the API server for its version, with a short deadline, and turns
// the usual failures into sentences a user can act on.
func (c *Clients) Ping(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	type answer struct {
		v   string
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		v, err := c.Core.Discovery().ServerVersion()
		if err != nil {
			ch <- answer{err: err}
			return
		}
		ch <- answer{v: v.GitVersion}
	}()
	select {
	case a := <-ch:
		if a.err != nil {
			return "", fmt.Errorf("cluster at %s is not usable: %w", c.Server, a.err)
		}
		return a.v, nil
	case <-ctx.Done():
		return "", fmt.Errorf("cluster at %s did not answer within 15s (unreachable or wrong address?)", c.Server)
	}
}

// Exec runs cmd in a pod's container, feeding stdin, and returns stdout.
// A non-zero exit or a transport error is an error that carries stderr.
func (c *Clients) Exec(ctx context.Context, namespace, pod, container string, cmd []string, stdin []byte) ([]byte, error) {
	req := c.Core.CoreV1().RESTClient().Post().Resource("pods").Namespace(namespace).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{
			Container: container,
			Command:   cmd,
			Stdin:     stdin != nil,
			Stdout:    true,
			Stderr:    true,
		}, scheme.ParameterCodec)
	exec, err := newExecutor(c.Config, req.URL().String())
	if err != nil {
		return nil, fmt.Errorf("exec in %s/%s: %w", namespace, pod, err)
	}
	var stdout, stderr bytes.Buffer
	opts := remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr}
	if stdin != nil {
		opts.Stdin = bytes.NewReader(stdin)
	}
	if err := exec.StreamWithContext(ctx, opts); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg != "" {
			return stdout.Bytes(), fmt.Errorf("exec %s in %s/%s: %w: %s", cmd[0], namespace, pod, err, msg)
		}
		return stdout.Bytes(), fmt.Errorf("exec %s in %s/%s: %w", cmd[0], namespace, pod, err)
	}
	return stdout.Bytes(), nil
}

// newExecutor prefers the WebSocket exec protocol and falls back to SPDY
// for API servers that do not speak it.
func newExecutor(cfg *rest.Config, rawURL string) (remotecommand.Executor, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("exec URL %q: %w", rawURL, err)
	}
	ws, err := remotecommand.NewWebSocketExecutor(cfg, http.MethodGet, rawURL)
	if err != nil {
		return nil, fmt.Errorf("websocket executor: %w", err)
	}
	spdy, err := remotecommand.NewSPDYExecutor(cfg, http.MethodPost, u)
	if err != nil {
		return nil, fmt.Errorf("spdy executor: %w", err)
	}
	return remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
}

func describePath(p string) string {
	if p == "" {
		return "(default loading rules)"
	}
	return p
}

func contextNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
