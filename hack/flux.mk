# The real Flux controllers, for the e2e tests that gate what they apply:
# source-controller and kustomize-controller built from their Go modules by
# hack/build-flux-controller.sh into ./bin/flux (git-ignored), once: cold,
# about 7 and 5 minutes on 2 cores; then cached (rm -rf bin/flux rebuilds
# them). `make test` and `make e2e` build them first and name them to the
# tests in PREGATE_FLUX_SOURCE_CONTROLLER and
# PREGATE_FLUX_KUSTOMIZE_CONTROLLER (the Makefile's E2E_ENV). Included from
# the Makefile.
#
# The newest releases that build from the module proxy here (v1.10 needs
# fluxcd/pkg modules the proxy refuses): source-controller v1.9.6 with
# fluxcd/pkg/artifact pinned to v0.18.1 (v0.18.2 and later are refused),
# kustomize-controller v1.9.5 as it is (v1.9.6 needs a refused
# fluxcd/pkg/kustomize).
FLUX_E2E_SOURCE_CONTROLLER    := v1.9.6
FLUX_E2E_KUSTOMIZE_CONTROLLER := v1.9.5
FLUX_SOURCE_CONTROLLER        := $(BIN)/flux/source-controller-$(FLUX_E2E_SOURCE_CONTROLLER)
FLUX_KUSTOMIZE_CONTROLLER     := $(BIN)/flux/kustomize-controller-$(FLUX_E2E_KUSTOMIZE_CONTROLLER)

.PHONY: flux-controllers

flux-controllers: $(FLUX_SOURCE_CONTROLLER) $(FLUX_KUSTOMIZE_CONTROLLER)

# The Flux e2e tests fail without them.
test e2e: flux-controllers

$(FLUX_SOURCE_CONTROLLER):
	hack/build-flux-controller.sh source-controller $(FLUX_E2E_SOURCE_CONTROLLER) $@ github.com/fluxcd/pkg/artifact=v0.18.1

$(FLUX_KUSTOMIZE_CONTROLLER):
	hack/build-flux-controller.sh kustomize-controller $(FLUX_E2E_KUSTOMIZE_CONTROLLER) $@
