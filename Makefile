# pregate build tooling. Everything here works on a machine with only go, gcc
# and make: the toolchain and the pinned tools come from the Go module proxy.

# go.mod asks for go1.27.4; whatever go is on PATH (1.26 with
# GOTOOLCHAIN=local, say) fetches that toolchain from the proxy and runs it.
# Keep equal to the toolchain line of go.mod.
export GOTOOLCHAIN := go1.27.4

# Pinned tools, built from source into ./bin on first use. The version is
# part of the file name, so changing a pin here installs the new version.
GOLANGCI_LINT_VERSION := v2.15.0
# controller-gen v0.23 is built on k8s.io v0.37, the minor go.mod requires:
# move the two together.
CONTROLLER_GEN_VERSION := v0.23.0
# The real cosign CLI the e2e tests sign with (e2e/cosign_test.go). v3.1.3
# needs go >= 1.26; it takes minutes to build, then it is cached in ./bin.
COSIGN_VERSION := v3.1.3

BIN            := $(CURDIR)/bin
GOLANGCI_LINT  := $(BIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)
CONTROLLER_GEN := $(BIN)/controller-gen-$(CONTROLLER_GEN_VERSION)
COSIGN         := $(BIN)/cosign-$(COSIGN_VERSION)
PREGATE        := $(BIN)/pregate
include hack/envtest.mk
include hack/flux.mk

# Extra flags for go test, such as TESTFLAGS='-run TestX -count=1 -v'.
TESTFLAGS ?=

# Stamped into `pregate version`; "dev"/"unknown" outside a git checkout.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS  = -X main.version=$(VERSION) -X main.commit=$(COMMIT)

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := all

.PHONY: check-generated all build test e2e xmllint test-unit fuzz lint fmt fmt-check vet generate tidy verify demo tools cosign clean

all: build

build:
	go build -ldflags '$(LDFLAGS)' -o $(PREGATE) ./cmd/pregate

# The binaries the e2e tests drive, named to them in the environment; the
# tests fail without them. The Flux controllers are hack/flux.mk's, which
# makes test and e2e build them (once: then cached in bin/flux).
E2E_ENV = PREGATE_BIN=$(PREGATE) PREGATE_COSIGN=$(COSIGN) \
	PREGATE_FLUX_SOURCE_CONTROLLER=$(FLUX_SOURCE_CONTROLLER) PREGATE_FLUX_KUSTOMIZE_CONTROLLER=$(FLUX_KUSTOMIZE_CONTROLLER)

# Everything CI runs (.ci/run: make lint, then make test).
test: build $(COSIGN) xmllint
	$(E2E_ENV) PREGATE_XMLLINT=$$(command -v xmllint) go test -race $(TESTFLAGS) ./...

# The e2e tests alone (./e2e/...), with what make test gives them.
e2e: build $(COSIGN) envtest-assets
	$(E2E_ENV) go test -race $(TESTFLAGS) ./e2e/...

# xmllint (Debian's libxml2-utils) validates the JUnit reports against the
# JUnit XSD in gate/report's tests; installed on first use.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
xmllint:
	@command -v xmllint >/dev/null || { \
		echo "installing libxml2-utils (xmllint) from Debian"; \
		$(SUDO) apt-get install -y -qq --no-install-recommends libxml2-utils >/dev/null 2>&1 || \
		{ $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends libxml2-utils; }; }

test-unit: xmllint
	PREGATE_XMLLINT=$$(command -v xmllint) go test -race -short $(TESTFLAGS) ./...

# Go native fuzzing: every target in FUZZ_TARGETS (package:FuzzName) runs
# for FUZZTIME, one at a time. `go test` alone runs them over their seed
# corpora (<package>/testdata/fuzz/<FuzzName>); a failing input the fuzzer
# finds is written there too.
FUZZTIME ?= 30s
FUZZ_TARGETS := \
	render:FuzzParseReference \
	render:FuzzDecodeObjects \
	render:FuzzImages \
	gate:FuzzGlob \
	config:FuzzLoad \
	config/admission:FuzzRead \
	verify:FuzzCheck \
	verify:FuzzParseIndex \
	verify:FuzzNextPage \
	sources:FuzzExtract \
	render/sops:FuzzDecrypt \
	render/helm:FuzzRenderValues

fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*} name=$${t##*:}; \
		echo "go test -run '^$$' -fuzz '^$$name\$$' -fuzztime $(FUZZTIME) ./$$pkg"; \
		go test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) ./$$pkg; \
	done

lint: fmt-check vet check-generated $(GOLANGCI_LINT)
	$(GOLANGCI_LINT) run ./...

# The gofmt of the pinned toolchain, not the one on PATH. testdata may hold
# Go files that are unformatted on purpose.
fmt-check:
	@files=$$(find . -name '*.go' -not -path './bin/*' -not -path './.git/*' -not -path '*/testdata/*' \
		-exec "$$(go env GOROOT)/bin/gofmt" -s -l {} +); \
	if [ -n "$$files" ]; then echo "gofmt: these files are not formatted (run make fmt):"; echo "$$files"; exit 1; fi

vet:
	go vet ./...

# gofmt -s and goimports (local imports grouped last), as .golangci.yaml sets them.
fmt: $(GOLANGCI_LINT)
	$(GOLANGCI_LINT) fmt ./...

# The API types in config/v1alpha1: their DeepCopy methods
# (zz_generated.deepcopy.go) and their CRDs in manifests/crd/bases.
generate: $(CONTROLLER_GEN)
	$(CONTROLLER_GEN) object paths=./config/v1alpha1/...
	$(CONTROLLER_GEN) crd paths=./config/v1alpha1/... output:crd:artifacts:config=manifests/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=pregate-controller paths=./gate/controller/... output:rbac:artifacts:config=manifests/rbac

# unchanged PATHS, WHAT: fails, saying WHAT to run, when git sees the paths
# (all of the tree when empty) changed or untracked.
define unchanged
	@git diff --exit-code -- $(1) || { echo "the tree changed: run $(2) and commit"; exit 1; }
	@new=$$(git ls-files --others --exclude-standard -- $(1)); \
	if [ -n "$$new" ]; then echo "not committed (run $(2) and commit):"; echo "$$new"; exit 1; fi
endef

# CI fails when generated files are stale: regenerate, then nothing may change.
GENERATED := config/v1alpha1/zz_generated.deepcopy.go manifests/crd manifests/rbac
check-generated: generate
	$(call unchanged,$(GENERATED),make generate)

tidy:
	go mod tidy

# A dirty-tree gate: regenerating and reformatting must change nothing.
verify: tidy generate fmt
	$(call unchanged,,make tidy generate fmt)

# A local registry and an in-process Sigstore, no network: pregate allows
# examples/clusters/production and blocks examples/clusters/staging, and the
# demo fails if either verdict is not the expected one (e2e/demo).
demo: build
	go run ./e2e/demo -pregate $(PREGATE)

tools: $(GOLANGCI_LINT) $(CONTROLLER_GEN) $(COSIGN)

# go-install PACKAGE@VERSION: builds a pinned tool into $@ (bin/NAME-VERSION).
define go-install
	GOBIN=$(BIN) go install $(1)
	mv $(BIN)/$(notdir $(firstword $(subst @, ,$(1)))) $@
endef

$(GOLANGCI_LINT):
	$(call go-install,github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION))

$(CONTROLLER_GEN):
	$(call go-install,sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_GEN_VERSION))

cosign: $(COSIGN)

$(COSIGN):
	$(call go-install,github.com/sigstore/cosign/v3/cmd/cosign@$(COSIGN_VERSION))

# Keeps the pinned tools in ./bin (they take minutes to build); rm -rf bin
# removes them too.
clean:
	rm -f bin/pregate
	rm -rf dist cover*
