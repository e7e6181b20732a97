// Package tenantapi holds what the checks that act against the API server
// as a tenant share (Pod Security, exposure): the requests they send (dry-run
// options, label patches, bounded parallelism) and the API server's answer
// as evidence: its status and message, which mechanism refused it, and
// whether a denial is about the identity that asked.
package tenantapi

import (
	"errors"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Answer is the API server's reply to one request, as evidence.
type Answer struct {
	Status  int
	Message string
	// Err is set when the request got no API answer at all (transport,
	// timeout): the attempt proves nothing.
	Err error
}

// Of turns a client error into an answer; nil is success (200 or 201).
func Of(err error, success int) Answer {
	if err == nil {
		return Answer{Status: success}
	}
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		s := st.Status()
		return Answer{Status: int(s.Code), Message: s.Message}
	}
	return Answer{Err: err}
}

// Detail renders the answer for an observation: "HTTP 403 Forbidden: <message>".
func (a Answer) Detail() string {
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
func (a Answer) Admitted() bool { return a.Err == nil && a.Status >= 200 && a.Status < 300 }

// Rejected is true when the API server refused the request (4xx).
func (a Answer) Rejected() bool { return a.Err == nil && a.Status >= 400 && a.Status < 500 }

// Word is the answer in one word for Observed: "admitted", "rejected (403)", "error".
func (a Answer) Word() string {
	switch {
	case a.Err != nil:
		return "error"
	case a.Admitted():
		return "admitted"
	}
	return fmt.Sprintf("rejected (%d)", a.Status)
}
