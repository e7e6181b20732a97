// Package probebin carries a prebuilt probe binary inside the bulkhead CLI,
// so `bulkhead run --kind` can build the probe image on a machine without
// a Go toolchain or a bulkhead checkout. `make build` compiles the probe
// first and builds the CLI with -tags probebin; a plain `go build` leaves
// Binary nil and the probe is compiled from source when needed.
package probebin

// Binary is the static linux probe binary for GOARCH, or nil.
var Binary []byte

// GOARCH is the architecture Binary was built for.
var GOARCH string
