package config

import (
	"errors"

	"github.com/pregate/pregate/config/v1alpha1"
)

// FromObjects builds a Set from API objects, as the controller reads them
// from the cluster: each is deep-copied, defaulted and validated as a
// policy file's would be, and named by origin ("cluster", say) in errors.
// Every invalid object is reported; the valid ones are still added, and
// the Set is returned with the error.
func FromObjects(origin string, policies []v1alpha1.TrustPolicy, roots []v1alpha1.TrustRoot) (*Set, error) {
	s := &Set{}
	var errs []error
	for i := range policies {
		if err := s.addObject(Origin{File: origin}, policies[i].DeepCopy()); err != nil {
			errs = append(errs, err)
		}
	}
	for i := range roots {
		if err := s.addObject(Origin{File: origin}, roots[i].DeepCopy()); err != nil {
			errs = append(errs, err)
		}
	}
	return s, errors.Join(errs...)
}
