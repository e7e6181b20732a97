package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/bulkhead-k8s/bulkhead/probes/wire"
)

// runCaps prints what this pod's kernel lets the probe do, so a check can say
// "not evaluated" instead of "failed".
func runCaps(_ context.Context, e *env, args []string) int {
	if len(args) != 0 {
		fmt.Fprintln(e.stderr, "probe caps: takes no arguments")
		return exitUsage
	}
	sctp, detail := sctpCapability()
	caps := wire.Capabilities{
		Version:    wire.Version,
		Source:     e.identity(),
		SCTP:       sctp,
		SCTPDetail: detail,
	}
	if err := json.NewEncoder(e.stdout).Encode(caps); err != nil {
		fmt.Fprintf(e.stderr, "probe caps: %v\n", err)
		return exitFail
	}
	return exitOK
}
