package main

import (
	"encoding/json"
	"errors"

	"github.com/bulkhead-k8s/bulkhead/probes/wire"
)

// Environment variables the pod manifest fills from the downward API.
const (
	envPodName      = "POD_NAME"
	envPodNamespace = "POD_NAMESPACE"
	envNodeName     = "NODE_NAME"
	envPodIP        = "POD_IP"
)

// identity is who this pod is. A missing variable leaves its field empty;
// the pod name falls back to the host name, which Kubernetes sets to it.
func (e *env) identity() wire.Identity {
	id := wire.Identity{
		Pod:       e.getenv(envPodName),
		Namespace: e.getenv(envPodNamespace),
		Node:      e.getenv(envNodeName),
		IP:        e.getenv(envPodIP),
	}
	if id.Pod == "" && e.hostname != nil {
		if h, err := e.hostname(); err == nil {
			id.Pod = h
		}
	}
	return id
}

// maxAnswer bounds how much of a peer's answer is read: an Identity is a few
// hundred bytes, and a target that is not a probe must not make us buffer much.
const maxAnswer = 64 << 10

// parseIdentity decodes a peer's answer. An answer that is valid JSON but
// names nobody (say, another service's {"status":"ok"}) is not an identity.
func parseIdentity(b []byte) (*wire.Identity, error) {
	var id wire.Identity
	if err := json.Unmarshal(b, &id); err != nil {
		return nil, err
	}
	if id == (wire.Identity{}) {
		return nil, errors.New("answer names no pod")
	}
	return &id, nil
}
