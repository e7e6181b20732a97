# bulkhead: the two commands a newcomer needs are `make conformance` and
# `make test` (see README.md). Everything else is a building block.

GO        ?= go
# The e2e suites create a kind cluster and install Cilium: allow for it.
E2E_TIMEOUT ?= 75m
# Extra flags for the e2e suites, e.g. E2E_ARGS="--keep-cluster".
E2E_ARGS  ?=
# Extra flags for `make conformance` (bulkhead run), e.g. RUN_ARGS="--profile quick".
RUN_ARGS  ?=
UNIT_PKGS  = $(shell $(GO) list ./... | grep -v /suites)
# Fuzz targets (func FuzzX in *_test.go) and their seed corpora
# (testdata/fuzz/FuzzX/): `go test` runs the corpora as tests; `make unit`
# then fuzzes each target for UNIT_FUZZTIME, `make fuzz` for FUZZTIME. Go
# fuzzes one target per invocation, hence the loop. New failing inputs land
# in testdata/fuzz/FuzzX/: fix the bug and commit the input.
FUZZTIME      ?= 2m
UNIT_FUZZTIME ?= 3s
FUZZ_PKGS      = $(sort $(dir $(shell grep -lr --include='*_test.go' '^func Fuzz' . | grep -v '^./suites/')))
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS    = -X github.com/bulkhead-k8s/bulkhead.version=$(VERSION)

.PHONY: all test unit fuzz e2e conformance bench-network build probe-image lint clean

all: lint build unit

## test: unit tests, then every e2e suite (negative controls included) on a disposable kind + Cilium cluster
test: unit e2e

## unit: tests of pure logic, then each fuzz target briefly; no cluster needed
unit:
	$(GO) test -count=1 $(UNIT_PKGS)
	@$(MAKE) --no-print-directory fuzz FUZZTIME=$(UNIT_FUZZTIME)

## fuzz: every fuzz target for FUZZTIME (default 2m each), e.g. make fuzz FUZZTIME=10m
fuzz:
	@set -e; for pkg in $(FUZZ_PKGS); do \
	  for target in $$(grep -h '^func Fuzz' $$pkg*_test.go | sed 's/^func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
	    echo "fuzz $$pkg $$target for $(FUZZTIME)"; \
	    $(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$pkg | grep -v '^fuzz: elapsed'; \
	  done; \
	done

## e2e: the conformance suites and their negative controls on a disposable kind cluster
e2e:
	$(GO) test -count=1 -v -timeout $(E2E_TIMEOUT) ./suites/ -args $(E2E_ARGS)

## conformance: kind + Cilium + reference tenants + every check + reports in _reports/<run-id>/, then delete the cluster
conformance: build
	bin/bulkhead run --kind --report-dir _reports $(RUN_ARGS)

## bench-network: how long the network matrix takes and how many exec round trips it uses, for 2 and 6 tenants
bench-network:
	$(GO) test -count=1 -run '^$$' -bench BenchmarkNetworkMatrix -benchtime 1x -timeout $(E2E_TIMEOUT) ./suites/ -args $(E2E_ARGS)

## build: the bulkhead CLI in bin/, carrying the probe binary (so `run --kind` needs no Go toolchain)
build:
	CGO_ENABLED=0 GOOS=linux $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o internal/probebin/probe ./probes
	CGO_ENABLED=0 $(GO) build -trimpath -tags probebin -ldflags "$(LDFLAGS)" -o bin/bulkhead ./cmd/bulkhead

## probe-image: the probe image as a docker-compatible tarball in _output/probe/ (docker load / crane push it)
probe-image: build
	bin/bulkhead probe-image --out _output/probe

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

clean:
	rm -rf bin _output internal/probebin/probe
