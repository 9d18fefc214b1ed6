package controller

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/pregate/pregate/render"
	"github.com/pregate/pregate/render/sops"
)

// decryptionKeys returns the keys render decrypts a Flux Kustomization's
// SOPS-encrypted content with: those of the Secret its
// spec.decryption.secretRef names, in its namespace, read as
// kustomize-controller reads it (*.agekey and *.asc entries).
//
// Only Secrets in namespaces are read: the Gate's, and that of the
// Kustomization it refers to. A Kustomization object in a revision can name
// any namespace, and the images rendered with the keys are shown in the
// Gate's status: reading another namespace's keys for it would let a Gate
// see values that namespace's keys protect. Elsewhere, and without a
// secretRef (kustomize-controller's --sops-age-secret, or a cloud KMS
// reached with workload identity), the values stay unknown: render reports
// what depends on them as gaps.
func (r *GateReconciler) decryptionKeys(namespaces ...string) render.KeysFunc {
	return func(ctx context.Context, ks render.Object) (sops.Keys, error) {
		spec, _ := ks.Content["spec"].(map[string]any)
		dec, _ := spec["decryption"].(map[string]any)
		ref, _ := dec["secretRef"].(map[string]any)
		name, _ := ref["name"].(string)
		if name == "" {
			return sops.Keys{}, nil
		}
		key := types.NamespacedName{Namespace: ks.Namespace(), Name: name}
		if !slices.Contains(namespaces, key.Namespace) {
			return sops.Keys{}, fmt.Errorf("decryption Secret %s not read: a Gate reads Secrets in its own namespace and its Kustomization's only", key)
		}
		s := &corev1.Secret{}
		if err := r.Get(ctx, key, s); err != nil {
			if apierrors.IsNotFound(err) {
				return sops.Keys{}, fmt.Errorf("decryption Secret %s not found", key)
			}
			return sops.Keys{}, fmt.Errorf("reading decryption Secret %s: %w", key, err)
		}
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(s)
		if err != nil {
			return sops.Keys{}, fmt.Errorf("reading decryption Secret %s: %w", key, err)
		}
		u["apiVersion"], u["kind"] = "v1", "Secret"
		keys, err := sops.KeysFromSecret(u)
		if err != nil {
			return sops.Keys{}, fmt.Errorf("decryption Secret %s: %w", key, err)
		}
		return keys, nil
	}
}
