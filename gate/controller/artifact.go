package controller

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	artifactcfg "github.com/fluxcd/pkg/artifact/config"
	"github.com/fluxcd/pkg/artifact/server"
	"github.com/fluxcd/pkg/artifact/storage"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pregate/pregate/config/v1alpha1"
	"github.com/pregate/pregate/gate"
	"github.com/pregate/pregate/gate/pipeline"
	"github.com/pregate/pregate/gate/report"
	"github.com/pregate/pregate/render"
)

// ArtifactFailedReason says a revision the Gate allowed could not be
// republished as its ExternalArtifact.
const ArtifactFailedReason = "ArtifactFailed"

// Artifacts are where Gates republish the revisions they allow, and the
// HTTP server Flux downloads them from: Flux's artifact storage
// (fluxcd/pkg/artifact), as source-controller keeps its own. Writes are
// atomic (a file is renamed into place), so the server reads without
// locks.
type Artifacts struct {
	opts    artifactcfg.Options
	storage *storage.Storage
}

// NewArtifacts opens the storage at opts.StoragePath, creating the
// directory, for artifacts advertised at opts' advertised address.
func NewArtifacts(opts artifactcfg.Options) (*Artifacts, error) {
	if err := os.MkdirAll(opts.StoragePath, 0o750); err != nil {
		return nil, fmt.Errorf("artifact storage: %w", err)
	}
	s, err := storage.New(&opts)
	if err != nil {
		return nil, fmt.Errorf("artifact storage: %w", err)
	}
	return &Artifacts{opts: opts, storage: s}, nil
}

// Start serves the artifacts over HTTP until ctx ends. Added to a manager
// it runs on the elected leader only, as the Gates' reconciles do: the
// replica that writes the artifacts serves them.
func (a *Artifacts) Start(ctx context.Context) error {
	ctrl.LoggerFrom(ctx).Info("serving artifacts", "addr", a.opts.StorageAddress, "path", a.opts.StoragePath)
	return server.Start(ctx, &a.opts)
}

// stagingFile is the file a new artifact is written to before it is named
// by its digest.
const stagingFile = "staging.tar.gz"

// store archives dir as the artifact of obj at revision, in a file named
// by its digest, and removes the artifacts beyond the retention. A
// current artifact with the same content is kept as it is.
func (a *Artifacts) store(ctx context.Context, obj metav1.Object, revision, dir string, current *meta.Artifact) (*meta.Artifact, error) {
	staging := a.storage.NewArtifactFor(sourcev1.ExternalArtifactKind, obj, revision, stagingFile)
	if err := a.storage.MkdirAll(staging); err != nil {
		return nil, fmt.Errorf("creating the artifact directory: %w", err)
	}
	if err := a.storage.Archive(&staging, dir, nil); err != nil {
		return nil, fmt.Errorf("archiving revision %s: %w", revision, err)
	}
	hex := strings.TrimPrefix(staging.Digest, "sha256:")
	art := a.storage.NewArtifactFor(sourcev1.ExternalArtifactKind, obj, revision, hex+".tar.gz")
	art.Digest, art.Size, art.LastUpdateTime = staging.Digest, staging.Size, staging.LastUpdateTime
	if current != nil && current.Path == art.Path && current.Revision == revision && a.storage.VerifyArtifact(*current) == nil {
		// The same bytes are served already: nothing changes for Flux.
		return current, os.Remove(a.storage.LocalPath(staging))
	}
	if err := os.Rename(a.storage.LocalPath(staging), a.storage.LocalPath(art)); err != nil {
		return nil, fmt.Errorf("storing revision %s: %w", revision, err)
	}
	if deleted, err := a.storage.GarbageCollect(ctx, art, 10*time.Second); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "removing old artifacts")
	} else if len(deleted) > 0 {
		ctrl.LoggerFrom(ctx).V(1).Info("removed old artifacts", "files", deleted)
	}
	return &art, nil
}

// artifactName is the name of a Gate's ExternalArtifact.
func artifactName(obj *v1alpha1.Gate) string {
	if n := obj.Spec.Artifact.Name; n != "" {
		return n
	}
	return obj.Name
}

// externalArtifact gets the Gate's ExternalArtifact, creating it owned by
// the Gate (so it goes with it). One that exists and is another's is not
// taken over.
func (r *GateReconciler) externalArtifact(ctx context.Context, obj *v1alpha1.Gate) (*sourcev1.ExternalArtifact, error) {
	ea := &sourcev1.ExternalArtifact{}
	key := types.NamespacedName{Namespace: obj.Namespace, Name: artifactName(obj)}
	err := r.Get(ctx, key, ea)
	switch {
	case apierrors.IsNotFound(err):
		ea = &sourcev1.ExternalArtifact{
			ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name},
			Spec: sourcev1.ExternalArtifactSpec{SourceRef: &meta.NamespacedObjectKindReference{
				APIVersion: v1alpha1.GroupVersion.String(), Kind: v1alpha1.GateKind, Name: obj.Name, Namespace: obj.Namespace,
			}},
		}
		// Controlled by the Gate, without blockOwnerDeletion: that would
		// need update on gates/finalizers where owner references are
		// enforced, and the Gate's deletion need not wait for it.
		owner := metav1.NewControllerRef(obj, v1alpha1.GroupVersion.WithKind(v1alpha1.GateKind))
		owner.BlockOwnerDeletion = nil
		ea.OwnerReferences = []metav1.OwnerReference{*owner}
		if err := r.Create(ctx, ea); err != nil {
			return nil, fmt.Errorf("creating ExternalArtifact %s: %w", key, err)
		}
		return ea, nil
	case err != nil:
		return nil, fmt.Errorf("reading ExternalArtifact %s: %w", key, err)
	}
	if owner := metav1.GetControllerOf(ea); owner == nil || owner.UID != obj.UID {
		return nil, fmt.Errorf("ExternalArtifact %s exists and is not this Gate's: rename it, or set spec.artifact.name", key)
	}
	return ea, nil
}

// publish republishes an allowed revision as the Gate's ExternalArtifact:
// the source's files as they are, or with spec.artifact.pinDigests what
// the Gate rendered with every verified image pinned. It returns the
// artifact served.
func (r *GateReconciler) publish(ctx context.Context, obj *v1alpha1.Gate, res *pipeline.Result, revision string) (*meta.Artifact, error) {
	if r.Artifacts == nil {
		return nil, errors.New("spec.artifact: the controller runs without artifact storage (pregate controller --storage-path)")
	}
	if len(res.Trees) != 1 || len(res.Renders) != 1 {
		return nil, fmt.Errorf("republishing: %d trees and %d rendered paths, want one of each", len(res.Trees), len(res.Renders))
	}
	ea, err := r.externalArtifact(ctx, obj)
	if err != nil {
		return nil, err
	}
	dir := res.Trees[0].Root
	if obj.Spec.Artifact.PinDigests {
		rendered := res.Renders[0]
		files, n, err := render.Republish(rendered.Result, render.RepublishOptions{
			Path:     rendered.Path,
			Artifact: render.SourceRef{Kind: sourcev1.ExternalArtifactKind, Namespace: ea.Namespace, Name: ea.Name},
			Pinned:   pinnedImages(res.Verdict),
		})
		if err != nil {
			return nil, fmt.Errorf("spec.artifact.pinDigests: %w", err)
		}
		if dir, err = writeFiles(filepath.Dir(dir), files); err != nil {
			return nil, fmt.Errorf("spec.artifact.pinDigests: %w", err)
		}
		ctrl.LoggerFrom(ctx).V(1).Info("pinned the revision's images", "revision", revision, "fields", n, "files", len(files))
	}
	art, err := r.Artifacts.store(ctx, ea, revision, dir, ea.Status.Artifact)
	if err != nil {
		return nil, err
	}
	return art, nil
}

// pinnedImages maps each image the verdict resolved to a digest to the
// reference pinned to it.
func pinnedImages(v gate.Verdict) map[string]string {
	pinned := map[string]string{}
	for _, iv := range v.Images {
		if iv.Pinned != "" {
			pinned[iv.Ref] = iv.Pinned
		}
	}
	return pinned
}

// writeFiles writes files (by slash-separated path) into a new directory
// under parent and returns it.
func writeFiles(parent string, files map[string][]byte) (string, error) {
	dir, err := os.MkdirTemp(parent, "republished-")
	if err != nil {
		return "", err
	}
	for p, b := range files {
		file := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(file), 0o750); err != nil {
			return "", err
		}
		if err := os.WriteFile(file, b, 0o600); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// syncArtifact brings the Gate's artifact conditions and its
// ExternalArtifact's status in line with the Gate: Ready=True with the
// artifact of the revision the Gate allowed, or Ready=False saying which
// revision is held back and why while the last allowed one is still
// served.
func (r *GateReconciler) syncArtifact(ctx context.Context, obj *v1alpha1.Gate) error {
	if obj.Spec.Artifact == nil {
		conditions.Delete(obj, sourcev1.ArtifactInStorageCondition)
		conditions.Delete(obj, sourcev1.ArtifactOutdatedCondition)
		return nil
	}
	art := obj.Status.Artifact
	held := ""
	if attempted := obj.Status.LastAttemptedRevision; attempted != "" && !conditions.IsReady(obj) && (art == nil || art.Revision != attempted) {
		held = fmt.Sprintf("revision %s is held back: %s", attempted, conditions.GetMessage(obj, meta.ReadyCondition))
	}
	ready := metav1.Condition{Type: meta.ReadyCondition, Status: metav1.ConditionTrue, Reason: meta.SucceededReason}
	switch {
	case art != nil:
		conditions.MarkTrue(obj, sourcev1.ArtifactInStorageCondition, meta.SucceededReason, "stored artifact for revision %s", art.Revision)
		ready.Message = fmt.Sprintf("stored artifact for revision %s", art.Revision)
	default:
		conditions.MarkFalse(obj, sourcev1.ArtifactInStorageCondition, ArtifactFailedReason, "no revision allowed yet")
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, cmp.Or(conditions.GetReason(obj, meta.ReadyCondition), meta.ProgressingReason), "no revision allowed yet"
	}
	if held != "" {
		conditions.MarkTrue(obj, sourcev1.ArtifactOutdatedCondition, conditions.GetReason(obj, meta.ReadyCondition), "%s", held)
		ready.Status, ready.Reason = metav1.ConditionFalse, conditions.GetReason(obj, meta.ReadyCondition)
		ready.Message = held
		if art != nil {
			ready.Message = fmt.Sprintf("serving revision %s; %s", art.Revision, held)
		}
	} else {
		conditions.Delete(obj, sourcev1.ArtifactOutdatedCondition)
	}
	ready.Message = gate.Clip(ready.Message, report.MaxStatusMessage)

	ea := &sourcev1.ExternalArtifact{}
	key := types.NamespacedName{Namespace: obj.Namespace, Name: artifactName(obj)}
	if err := r.Get(ctx, key, ea); err != nil {
		if apierrors.IsNotFound(err) && art == nil {
			return nil // created with the first allowed revision
		}
		return client.IgnoreNotFound(err)
	}
	if owner := metav1.GetControllerOf(ea); owner == nil || owner.UID != obj.UID {
		return nil
	}
	before := ea.DeepCopy()
	ea.Status.Artifact = art
	ready.ObservedGeneration = ea.Generation
	apimeta.SetStatusCondition(&ea.Status.Conditions, ready)
	if equality.Semantic.DeepEqual(before.Status, ea.Status) {
		return nil
	}
	if err := r.Status().Patch(ctx, ea, client.MergeFrom(before), client.FieldOwner(r.ControllerName)); err != nil {
		return fmt.Errorf("updating ExternalArtifact %s: %w", key, err)
	}
	return nil
}
