package config

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pregate/pregate/config/v1alpha1"
	"github.com/pregate/pregate/verify/verifytest"
)

// TestDefaultTrustSource covers the TrustRoots DefaultTrustSource answers
// without a network: inline trusted roots and the errors. Public-good and
// TUF mirrors are exercised where a TUF repository is served.
func TestDefaultTrustSource(t *testing.T) {
	t.Parallel()
	rootJSON := verifytest.NewSigstore(t).TrustedRootJSON()
	trust := DefaultTrustSource(t.Context(), t.TempDir())
	named := func(spec v1alpha1.TrustRootSpec) *v1alpha1.TrustRoot {
		return &v1alpha1.TrustRoot{ObjectMeta: metav1.ObjectMeta{Name: "internal"}, Spec: spec}
	}
	secretRef := &v1alpha1.SecretKeySelector{Name: "root", Namespace: "pregate-system", Key: "trusted_root.json"}

	m, err := trust(named(v1alpha1.TrustRootSpec{TrustedRoot: &v1alpha1.TrustedRootSource{Data: string(rootJSON)}}))
	if err != nil || m == nil {
		t.Errorf("inline trusted root: trust() = %v, %v; want material", m, err)
	}

	for name, tt := range map[string]struct {
		root *v1alpha1.TrustRoot
		want string
	}{
		"Secret not resolved": {
			root: named(v1alpha1.TrustRootSpec{TrustedRoot: &v1alpha1.TrustedRootSource{SecretRef: secretRef}}),
			want: `TrustRoot "internal": spec.trustedRoot.secretRef must be resolved first: only the controller reads Secrets; give spec.trustedRoot.data inline`,
		},
		"empty trusted root": {
			root: named(v1alpha1.TrustRootSpec{TrustedRoot: &v1alpha1.TrustedRootSource{}}),
			want: `TrustRoot "internal": no trust material`,
		},
		"empty spec": {
			root: named(v1alpha1.TrustRootSpec{}),
			want: `TrustRoot "internal": no trust material`,
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			m, err := trust(tt.root)
			if err == nil {
				t.Fatalf("trust() = %v, nil error; want %q", m, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("trust() error = %q, want %q", err, tt.want)
			}
		})
	}
}
