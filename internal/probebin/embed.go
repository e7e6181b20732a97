//go:build probebin

package probebin

import (
	_ "embed"
	"runtime"
)

//go:embed probe
var embedded []byte

func init() {
	Binary = embedded
	GOARCH = runtime.GOARCH
}
