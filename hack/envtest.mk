# envtest: a real kube-apiserver and etcd for the controller tests
# (controller-runtime envtest through fluxcd/pkg/runtime/testenv).
#
# No binary can be downloaded here, so setup-envtest cannot fetch them:
# hack/build-envtest.sh builds both from the Go module proxy into
# ENVTEST_ASSETS, which is under ./bin and so git-ignored. Cold, that is ~15
# CPU-minutes (7-8 minutes on 2 idle cores, over 20 on a busy machine) and
# ~550 MB of modules; warm, ~20 s. They are file targets: built once, then
# cached; rm -rf bin/k8s rebuilds them. Included from the Makefile after the
# tool variables.

# kube-apiserver's version; its minor follows the k8s.io/* v0.<minor> modules
# in go.mod. The previous patch release if the proxy refuses one (v1.37.2's
# zip is refused here).
ENVTEST_K8S_VERSION  := 1.37.1
# The etcd that Kubernetes 1.37 supports.
ENVTEST_ETCD_VERSION := v3.6.16
ENVTEST_ASSETS       := $(CURDIR)/bin/k8s/$(ENVTEST_K8S_VERSION)-linux-amd64

# Read by controller-runtime's envtest in every go test run from make. The
# start timeout is raised from 20s for a loaded 2-core CI machine.
export KUBEBUILDER_ASSETS := $(ENVTEST_ASSETS)
export KUBEBUILDER_CONTROLPLANE_START_TIMEOUT := 60s

# The Flux CRDs the envtest tests install next to pregate's own: copied from
# the controller modules (their api submodules carry no CRD YAML) into
# testdata by `make envtest-flux-crds`, which writes an ORIGIN file too. When
# the controller imports the Flux API modules, keep these in step with them.
FLUX_SOURCE_CONTROLLER_VERSION    := v1.10.1
FLUX_KUSTOMIZE_CONTROLLER_VERSION := v1.10.1
ENVTEST_FLUX_CRDS                 := gate/controller/testdata/crd/flux

.PHONY: envtest-assets envtest-flux-crds

envtest-assets: $(ENVTEST_ASSETS)/kube-apiserver $(ENVTEST_ASSETS)/etcd

# The control plane is part of `make test` (the envtest tests fail without it).
test: envtest-assets

envtest-flux-crds:
	$(CURDIR)/hack/update-flux-crds.sh $(FLUX_SOURCE_CONTROLLER_VERSION) $(FLUX_KUSTOMIZE_CONTROLLER_VERSION) $(ENVTEST_FLUX_CRDS)

$(ENVTEST_ASSETS)/kube-apiserver:
	$(CURDIR)/hack/build-envtest.sh kube-apiserver $(ENVTEST_K8S_VERSION) $@

$(ENVTEST_ASSETS)/etcd:
	$(CURDIR)/hack/build-envtest.sh etcd $(ENVTEST_ETCD_VERSION) $@
