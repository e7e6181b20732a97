package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/bulkhead-k8s/bulkhead/probes/wire"
)

func TestRunUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"nope"}} {
		e, stdout, stderr := testEnv("")
		if code := run(context.Background(), e, args); code != exitUsage {
			t.Errorf("run(%q) = %d, want %d", args, code, exitUsage)
		}
		if !strings.Contains(stderr.String(), "usage: probe") || stdout.String() != "" {
			t.Errorf("run(%q): usage must go to stderr; stdout %q stderr %q", args, stdout, stderr)
		}
	}
}

func TestRunVersion(t *testing.T) {
	e, stdout, _ := testEnv("")
	if code := run(context.Background(), e, []string{"version"}); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	if want := "version=dev wire=1 "; !strings.Contains(stdout.String(), want) {
		t.Errorf("version output %q, want it to contain %q", stdout, want)
	}
}

func TestRunCaps(t *testing.T) {
	e, stdout, _ := testEnv("")
	if code := run(context.Background(), e, []string{"caps"}); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	var caps wire.Capabilities
	if err := json.Unmarshal([]byte(stdout.String()), &caps); err != nil {
		t.Fatalf("not Capabilities JSON: %v: %s", err, stdout)
	}
	supported, _ := sctpCapability()
	if caps.Version != wire.Version || caps.Source != testIdentity || caps.SCTP != supported {
		t.Errorf("caps = %+v", caps)
	}
	if !caps.SCTP && caps.SCTPDetail == "" {
		t.Errorf("SCTP unsupported without a reason")
	}
}

func TestIdentityFallsBackToHostname(t *testing.T) {
	e := &env{
		getenv:   func(string) string { return "" },
		hostname: func() (string, error) { return "probe-7", nil },
	}
	if got := e.identity(); got != (wire.Identity{Pod: "probe-7"}) {
		t.Errorf("identity = %+v", got)
	}
}

func TestParseIdentity(t *testing.T) {
	for _, in := range []string{`{}`, `{"status":"ok"}`, `not json`, ``} {
		if _, err := parseIdentity([]byte(in)); err == nil {
			t.Errorf("parseIdentity(%q) accepted a non-identity", in)
		}
	}
	if id, err := parseIdentity([]byte(`{"pod":"p","ip":"10.0.0.1"}` + "\n")); err != nil || id.Pod != "p" {
		t.Errorf("parseIdentity: %+v %v", id, err)
	}
}
