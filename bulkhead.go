// Package bulkhead is the root of the bulkhead module. It carries what every
// front end needs from the repository root: the version and the kind cluster
// configuration (embedded, so the CLI works without a checkout).
package bulkhead

import (
	_ "embed"
	"runtime/debug"
)

// KindConfig is kind-config.yaml: the disposable cluster's shape.
//
//go:embed kind-config.yaml
var KindConfig []byte

// version is set at build time: -ldflags "-X github.com/bulkhead-k8s/bulkhead.version=v0.1.0".
var version = ""

// Version returns the build's version, falling back to the VCS revision Go
// recorded, or "dev".
func Version() (ver, commit string) {
	ver = version
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				commit = s.Value[:12]
			}
		}
		if ver == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			ver = info.Main.Version
		}
	}
	if ver == "" {
		ver = "dev"
	}
	return ver, commit
}
