package controller

import (
	"context"
	"fmt"
	"io"
	"net/http"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pregate/pregate/render"
	"github.com/pregate/pregate/render/helm"
)

// helmOptions render a Gate's HelmReleases as helm-controller would in
// this cluster: the chart from the HelmChart source-controller built for
// it (else from its repository, through the shared chart cache), a
// chartRef's HelmChart or ExternalArtifact artifact, and what the
// revision does not hold (valuesFrom objects, chart sources) read from
// the cluster.
func (r *GateReconciler) helmOptions() render.Option {
	opts := []helm.Option{
		helm.WithLookup(r.readObject),
		helm.WithArtifactFetcher(r.helmArtifact),
		helm.WithHelmChartArtifacts(),
	}
	if r.Charts != nil {
		opts = append(opts, helm.WithCharts(r.Charts))
	}
	return render.WithHelm(opts...)
}

// readObject reads a ConfigMap, Secret, HelmRepository or OCIRepository
// as an unstructured object (postBuild.substituteFrom, what a HelmRelease
// names); nil when there is none.
func (r *GateReconciler) readObject(ctx context.Context, kind, namespace, name string) (map[string]any, error) {
	var (
		o          client.Object
		apiVersion string
	)
	switch kind {
	case "ConfigMap":
		o, apiVersion = &corev1.ConfigMap{}, "v1"
	case "Secret":
		o, apiVersion = &corev1.Secret{}, "v1"
	case sourcev1.HelmRepositoryKind:
		o, apiVersion = &sourcev1.HelmRepository{}, sourcev1.GroupVersion.String()
	case sourcev1.OCIRepositoryKind:
		o, apiVersion = &sourcev1.OCIRepository{}, sourcev1.GroupVersion.String()
	default:
		return nil, fmt.Errorf("unsupported kind %q", kind)
	}
	if err := r.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, o); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	if err != nil {
		return nil, err
	}
	u["apiVersion"], u["kind"] = apiVersion, kind
	return u, nil
}

// helmArtifact looks up the artifact of a HelmChart or ExternalArtifact;
// nil when the object or its artifact does not exist yet.
func (r *GateReconciler) helmArtifact(ctx context.Context, ref helm.SourceRef) (*helm.Artifact, error) {
	var s sourcev1.Source
	switch ref.Kind {
	case sourcev1.HelmChartKind:
		s = &sourcev1.HelmChart{}
	case sourcev1.ExternalArtifactKind:
		s = &sourcev1.ExternalArtifact{}
	default:
		return nil, fmt.Errorf("unsupported kind %q", ref.Kind)
	}
	if err := r.Get(ctx, types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}, s.(client.Object)); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	a := s.GetArtifact()
	if a == nil {
		return nil, nil
	}
	url := a.URL
	return &helm.Artifact{URL: url, Revision: a.Revision, Digest: a.Digest, Open: func(ctx context.Context) (io.ReadCloser, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			_ = resp.Body.Close()
			return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return resp.Body, nil
	}}, nil
}
