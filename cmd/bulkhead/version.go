package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/bulkhead-k8s/bulkhead"
	"github.com/bulkhead-k8s/bulkhead/internal/probebin"
	"github.com/bulkhead-k8s/bulkhead/probes/wire"
)

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print bulkhead's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ver, commit := bulkhead.Version()
			embedded := "no (built from source when needed)"
			if probebin.Binary != nil {
				embedded = "yes (" + probebin.GOARCH + ")"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "bulkhead %s\ncommit: %s\nprobe contract: v%d\nembedded probe: %s\ngo: %s %s/%s\n",
				ver, orUnknown(commit), wire.Version, embedded, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
