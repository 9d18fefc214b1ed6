package pipeline

import (
	"errors"
	"fmt"
	"reflect"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/pregate/pregate/config"
	"github.com/pregate/pregate/config/v1alpha1"
)

// RevisionSuffix names a TrustPolicy or TrustRoot as the revision writes
// it, next to the one of the same name given: "first-party.revision".
const RevisionSuffix = ".revision"

// RevisionTrust are the TrustPolicies and TrustRoots a revision applies.
type RevisionTrust struct {
	Policies []v1alpha1.TrustPolicy
	Roots    []v1alpha1.TrustRoot
	// Files are where each object is, by Kind/name.
	Files map[string]string
}

// revisionTrust reads the TrustPolicies and TrustRoots the revision
// applies. A revision that changes trust is checked under the trust it
// brings as well as under the trust given: its images must pass both, so
// a policy it tightens is enforced before it is applied (its own images
// cannot wedge the next revision), and a policy it relaxes cannot
// approve the revision that relaxes it. A policy given unchanged in the
// revision counts once. The revision's copies are named with
// RevisionSuffix; a revision TrustPolicy's trustRootRef names the
// revision's TrustRoot of that name when it has one.
func revisionTrust(o Options, res *Result) (*config.Set, error) {
	rt := RevisionTrust{Files: map[string]string{}}
	for _, r := range res.Renders {
		for _, obj := range r.Objects {
			if obj.Group() != v1alpha1.GroupVersion.Group {
				continue
			}
			var into any
			switch obj.Kind() {
			case v1alpha1.TrustPolicyKind:
				rt.Policies = append(rt.Policies, v1alpha1.TrustPolicy{})
				into = &rt.Policies[len(rt.Policies)-1]
			case v1alpha1.TrustRootKind:
				rt.Roots = append(rt.Roots, v1alpha1.TrustRoot{})
				into = &rt.Roots[len(rt.Roots)-1]
			default:
				continue
			}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Content, into); err != nil {
				return nil, fmt.Errorf("%s (%s): %w", obj.ID(), obj.Origin.File, err)
			}
			rt.Files[obj.Kind()+"/"+obj.Name()] = obj.Origin.File
		}
	}
	if len(rt.Policies) == 0 {
		return nil, nil
	}
	if o.RevisionTrust != nil {
		var err error
		if rt, err = o.RevisionTrust(rt); err != nil {
			return nil, err
		}
	}
	given := o.Policies.Set
	renamed := map[string]bool{}
	for _, root := range rt.Roots {
		renamed[root.Name] = true
	}
	set := &config.Set{}
	var errs []error
	for _, p := range rt.Policies {
		file := rt.Files[v1alpha1.TrustPolicyKind+"/"+p.Name]
		if have, ok := given.TrustPolicy(p.Name); ok {
			// Compared as defaulted, as the given one is.
			if s, err := config.FromObjects(file, []v1alpha1.TrustPolicy{p}, nil); err == nil {
				if dp, ok := s.TrustPolicy(p.Name); ok && reflect.DeepEqual(have.Spec, dp.Spec) {
					continue
				}
			}
		}
		p.Name += RevisionSuffix
		if renamed[p.Spec.TrustRootRef] {
			p.Spec.TrustRootRef += RevisionSuffix
		}
		errs = append(errs, add(set, file, []v1alpha1.TrustPolicy{p}, nil))
	}
	for _, r := range rt.Roots {
		file := rt.Files[v1alpha1.TrustRootKind+"/"+r.Name]
		r.Name += RevisionSuffix
		errs = append(errs, add(set, file, nil, []v1alpha1.TrustRoot{r}))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(set.TrustPolicies()) == 0 {
		return nil, nil
	}
	merged := &config.Set{}
	if err := errors.Join(merged.Add(given), merged.Add(set)); err != nil {
		return nil, err
	}
	return merged, merged.Validate()
}

func add(set *config.Set, file string, policies []v1alpha1.TrustPolicy, roots []v1alpha1.TrustRoot) error {
	s, err := config.FromObjects(file, policies, roots)
	if err != nil {
		return err
	}
	return set.Add(s)
}
