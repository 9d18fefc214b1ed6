package controller

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// +kubebuilder:rbac:groups="",resources=pods,verbs=list

// RunningPodsPageSize is how many Pods one list request asks for, and
// DefaultMaxRunningPods how many Pods ListRunningPods reads at most.
const (
	RunningPodsPageSize   = 500
	DefaultMaxRunningPods = 50_000
)

// runningSelector leaves out the Pods that are done: they are not created
// again.
var runningSelector = fields.ParseSelectorOrDie("status.phase!=Succeeded,status.phase!=Failed")

// ListRunningPods lists the Pods that run in the cluster (Pending or
// Running, in every namespace) from the API server, a page at a time,
// without their status and managed fields: what admission sees of a Pod
// is its metadata and spec. More than limit Pods is an error: the Pods
// past it would go unchecked. requests counts the list requests made.
func ListRunningPods(ctx context.Context, c client.Reader, limit int) (pods []map[string]any, requests int, err error) {
	if limit <= 0 {
		limit = DefaultMaxRunningPods
	}
	cont := ""
	for {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("PodList"))
		opts := []client.ListOption{client.Limit(RunningPodsPageSize), client.MatchingFieldsSelector{Selector: runningSelector}}
		if cont != "" {
			opts = append(opts, client.Continue(cont))
		}
		requests++
		if err := c.List(ctx, list, opts...); err != nil {
			return nil, requests, fmt.Errorf("listing Pods (page %d): %w", requests, err)
		}
		for i := range list.Items {
			obj := list.Items[i].Object
			delete(obj, "status")
			if md, ok := obj["metadata"].(map[string]any); ok {
				delete(md, "managedFields")
			}
			if obj["kind"] == nil {
				obj["apiVersion"], obj["kind"] = "v1", "Pod"
			}
			pods = append(pods, obj)
		}
		if len(pods) > limit {
			return nil, requests, fmt.Errorf("more than %d Pods run in the cluster: raise --max-running-pods to check them all", limit)
		}
		if cont = list.GetContinue(); cont == "" {
			return pods, requests, nil
		}
	}
}

// DefaultRunningPodsReuse is how long one listing of the running Pods
// serves every Gate that needs it, by default: Gates reconciled together
// list them once.
const DefaultRunningPodsReuse = 30 * time.Second

// runningPodsList is the last listing of the running Pods, shared by
// the Gates (its objects are read, never changed).
type runningPodsList struct {
	mu   sync.Mutex
	at   time.Time
	pods []map[string]any
}

// runningPods lists the Pods that run, for the pipeline, or gives the
// listing made less than r.RunningPodsReuse ago.
func (r *GateReconciler) runningPods(ctx context.Context) ([]map[string]any, error) {
	l := &r.running
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pods != nil && time.Since(l.at) < r.RunningPodsReuse {
		return l.pods, nil
	}
	reader := r.APIReader
	if reader == nil {
		reader = r.Client
	}
	pods, _, err := ListRunningPods(ctx, reader, r.MaxRunningPods)
	if err != nil {
		return nil, err
	}
	if pods == nil {
		pods = []map[string]any{}
	}
	l.at, l.pods = time.Now(), pods
	return pods, nil
}
