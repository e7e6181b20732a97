// Package fakeapi is a fake Kubernetes API server for the unit tests of
// checks that act as tenants: it answers access reviews from a table and
// every other request from a function of who asked (the impersonated user)
// and what, so a test can run a check end to end, impersonation included,
// without a cluster.
package fakeapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/kube"
)

// Request is one request the server received.
type Request struct {
	// User is the impersonated user ("" for the test process itself).
	User   string
	Method string
	// Path is the URL path, e.g. /api/v1/namespaces/a-web/services.
	Path   string
	DryRun bool
	Body   []byte
}

// Server is the fake API server.
type Server struct {
	srv *httptest.Server
	// Allowed answers SubjectAccessReviews: "user verb resource namespace".
	Allowed map[string]bool
	// Answer answers every other request with a status and, for errors, a
	// message; a 2xx answer echoes the request's body (the object).
	Answer func(r Request) (status int, message string)

	mu       sync.Mutex
	requests []Request
}

// New starts a server that t stops.
func New(t *testing.T) *Server {
	s := &Server{Allowed: map[string]bool{}, Answer: func(Request) (int, string) { return http.StatusOK, "" }}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// Env is a check environment whose clients talk to the server.
func (s *Server) Env(t *testing.T, top checks.Topology) *checks.Env {
	// JSON, so the server can read what it is sent.
	c, err := kube.FromConfig(&rest.Config{Host: s.srv.URL, ContentConfig: rest.ContentConfig{ContentType: "application/json"}})
	if err != nil {
		t.Fatal(err)
	}
	return &checks.Env{Kube: c, RunID: "t3st", Topology: top, ProbeImage: "probe:test", Timing: checks.Timing{Rounds: 2, Pause: 1}}
}

// Requests are the requests received so far, access reviews left out.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if strings.HasSuffix(r.URL.Path, "/subjectaccessreviews") {
		var sar authorizationv1.SubjectAccessReview
		_ = json.Unmarshal(body, &sar)
		if ra := sar.Spec.ResourceAttributes; ra != nil {
			res := ra.Resource
			if ra.Group != "" {
				res = ra.Group + "/" + res
			}
			sar.Status.Allowed = s.Allowed[strings.Join([]string{sar.Spec.User, ra.Verb, res, ra.Namespace}, " ")]
		}
		write(w, http.StatusCreated, sar)
		return
	}
	req := Request{User: r.Header.Get("Impersonate-User"), Method: r.Method, Path: r.URL.Path, DryRun: r.URL.Query().Get("dryRun") == "All", Body: body}
	s.mu.Lock()
	s.requests = append(s.requests, req)
	s.mu.Unlock()
	status, msg := s.Answer(req)
	if status >= 300 {
		write(w, status, metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure,
			Message: msg, Code: int32(status), Reason: metav1.StatusReasonForbidden})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if len(body) == 0 {
		body = []byte(`{}`)
	}
	_, _ = w.Write(body)
}

func write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
