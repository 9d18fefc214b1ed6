// Package helm renders a Flux HelmRelease (helm.toolkit.fluxcd.io/v2) into
// the Kubernetes objects helm-controller would install, so that their images
// can be listed and verified before the revision is applied.
//
// Render follows helm-controller v1.6.4 (Flux 2.9.5, Helm v4.2.4) and, for
// building the chart artifact, source-controller's HelmChart and
// OCIRepository reconcilers:
//
//   - the chart comes from spec.chart.spec (a HelmRepository of type default
//     or oci, or a chart directory in a GitRepository or Bucket whose
//     revision is on disk) or from spec.chartRef (an OCIRepository, or a
//     HelmChart or ExternalArtifact through a caller-supplied fetcher);
//   - values are composed from spec.valuesFrom and spec.values with
//     fluxcd/pkg/chartutil's merge and targetPath rules;
//   - the release is rendered by Helm's own install action in client-only
//     dry-run mode, with helm-controller's name, namespace and install
//     settings, and its post-renderers (Kustomize patches and images, common
//     metadata, origin labels) applied with the same post-render strategy.
//
// Remote charts are fetched through a Charts, which keeps archives by
// digest (in memory and optionally in a directory), fetches each digest once
// per process however many HelmReleases share it, and can work offline from
// what it has kept.
package helm
