package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gatecontroller "github.com/pregate/pregate/gate/controller"
)

// TestListRunningPods_5000: listing the Pods of a cluster that runs 5,000
// of them, against the real kube-apiserver: how long it takes and how many
// requests it makes, a page of gatecontroller.RunningPodsPageSize at a time; Pods that
// are done are left out by the API server.
func TestListRunningPods_5000(t *testing.T) {
	t.Parallel()
	const pods = 5000
	ctx := t.Context()
	cfg, _ := startControlPlane(t)
	k8sClient, err := client.New(cfg, client.Options{})
	must(t, err)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "running-5000"}}
	must(t, k8sClient.Create(ctx, ns))
	start := time.Now()
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := range pods {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: fmt.Sprintf("app-%05d", i), Labels: map[string]string{"app": fmt.Sprint("app-", i%50)}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{
					{Name: "app", Image: fmt.Sprintf("registry.example/acme/app-%02d:1.%d", i%50, i%3)},
					{Name: "sidecar", Image: "registry.example/mesh/proxy:1.0"},
				}},
			}
			if err := k8sClient.Create(ctx, pod); err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("creating Pods: %v", firstErr)
	}
	t.Logf("created %d Pods in %s", pods, time.Since(start).Round(time.Millisecond))
	// A Pod that is done is not listed.
	done := &corev1.Pod{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: "app-00000"}, done); err != nil {
		t.Fatal(err)
	}
	done.Status.Phase = corev1.PodSucceeded
	if err := k8sClient.Status().Update(ctx, done); err != nil {
		t.Fatal(err)
	}

	// Count the requests as the API server sees them.
	cfg = rest.CopyConfig(cfg)
	var seen countingTransport
	cfg.Wrap(seen.wrap)
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	list, requests, err := gatecontroller.ListRunningPods(ctx, c, 0)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	mine := 0
	for _, p := range list {
		md, _ := p["metadata"].(map[string]any)
		if md["namespace"] == ns.Name {
			mine++
			if p["status"] != nil || md["managedFields"] != nil {
				t.Fatalf("Pod %v kept its status or managed fields", md["name"])
			}
		}
	}
	t.Logf("listed %d running Pods (%d of this test) in %s with %d requests (%d seen by the API server)", len(list), mine, took.Round(time.Millisecond), requests, seen.n.Load())
	if mine != pods-1 {
		t.Errorf("listed %d of this test's Pods, want %d (the one done left out)", mine, pods-1)
	}
	if want := (len(list) + gatecontroller.RunningPodsPageSize - 1) / gatecontroller.RunningPodsPageSize; requests > want+1 || int(seen.n.Load()) != requests {
		t.Errorf("%d requests (%d seen), want about %d pages of %d", requests, seen.n.Load(), want, gatecontroller.RunningPodsPageSize)
	}
	if _, _, err := gatecontroller.ListRunningPods(ctx, c, 1000); err == nil || !strings.Contains(err.Error(), "more than 1000 Pods run in the cluster") {
		t.Errorf("ListRunningPods(max 1000) error = %v, want it refused", err)
	}
}

// countingTransport counts the requests that list Pods.
type countingTransport struct {
	n atomic.Int64
}

func (c *countingTransport) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, "/pods") {
			c.n.Add(1)
		}
		return rt.RoundTrip(req)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
