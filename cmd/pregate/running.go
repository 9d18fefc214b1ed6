package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pregate/pregate/gate"
	"github.com/pregate/pregate/gate/controller"
	"github.com/pregate/pregate/gate/pipeline"
	"github.com/pregate/pregate/render"
)

// runningFlags say what runs in the cluster, for a revision that changes
// its admission policies.
type runningFlags struct {
	files       []string
	mode        string
	fromCluster bool
	kubeconfig  string
	maxPods     int
}

func (f *runningFlags) bind(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringArrayVar(&f.files, "running-images", nil, "a YAML or JSON file of the Pods that run in the cluster, as kubectl get pods -A -o yaml writes it: "+
		"when the revision applies admission policies, the Pods they would no longer admit are named, and the readiness of policies in Audit for Enforce counts them (repeatable)")
	fs.BoolVar(&f.fromCluster, "running-from-cluster", false, "read the Pods that run, and the labels of their namespaces, from the cluster of the kubeconfig (--kubeconfig, else $KUBECONFIG, else ~/.kube/config), a page at a time; RBAC: list pods, get namespaces")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "with --running-from-cluster: the kubeconfig file")
	fs.IntVar(&f.maxPods, "max-running-pods", controller.DefaultMaxRunningPods, "with --running-from-cluster: how many Pods are read at most (more is an error, never a partial check)")
	fs.StringVar(&f.mode, "running-pods", string(gate.RunningPodsDeny), "what running Pods the revision's admission policies would no longer admit do to it: deny blocks it, warn reports them")
}

// apply sets what runs, read from the files, in opts.
func (f *runningFlags) apply(opts *pipeline.Options) error {
	switch gate.RunningPods(f.mode) {
	case gate.RunningPodsDeny, gate.RunningPodsWarn:
		opts.RunningPods = gate.RunningPods(f.mode)
	default:
		return fmt.Errorf("--running-pods %q: want deny or warn", f.mode)
	}
	if f.fromCluster {
		if len(f.files) > 0 {
			return errors.New("--running-images and --running-from-cluster: give one")
		}
		return f.fromKubeconfig(opts)
	}
	if len(f.files) == 0 {
		return nil
	}
	var pods []map[string]any
	for _, file := range f.files {
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("--running-images: %w", err)
		}
		read, err := readPods(file, b)
		if err != nil {
			return fmt.Errorf("--running-images: %w", err)
		}
		pods = append(pods, read...)
	}
	opts.Running = func(context.Context) ([]map[string]any, error) { return pods, nil }
	return nil
}

// readPods reads the Pods of a file: Pod documents, or lists of them
// (kind List or PodList). Pods that are done (Succeeded, Failed) are left
// out: nothing creates them again. Any other object is an error.
func readPods(file string, b []byte) ([]map[string]any, error) {
	docs, err := render.DecodeObjects(file, b)
	if err != nil {
		return nil, err
	}
	var out []map[string]any
	var add func(obj map[string]any, where string) error
	add = func(obj map[string]any, where string) error {
		switch kind, _ := obj["kind"].(string); kind {
		case "List", "PodList":
			items, ok := obj["items"].([]any)
			if !ok && obj["items"] != nil {
				return fmt.Errorf("%s: items is not a list", where)
			}
			for i, item := range items {
				m, ok := item.(map[string]any)
				if !ok {
					return fmt.Errorf("%s: items[%d] is not an object", where, i)
				}
				if m["kind"] == nil {
					m["apiVersion"], m["kind"] = "v1", "Pod"
				}
				if err := add(m, fmt.Sprintf("%s items[%d]", where, i)); err != nil {
					return err
				}
			}
		case "Pod":
			status, _ := obj["status"].(map[string]any)
			if phase := status["phase"]; phase == "Succeeded" || phase == "Failed" {
				return nil
			}
			out = append(out, obj)
		default:
			return fmt.Errorf("%s: a %q, not a Pod", where, kind)
		}
		return nil
	}
	for i, doc := range docs {
		if err := add(doc, fmt.Sprintf("%s document %d", file, i+1)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// fromKubeconfig reads what runs from the cluster the kubeconfig names:
// the Pods, and the labels of their namespaces.
func (f *runningFlags) fromKubeconfig(opts *pipeline.Options) error {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return fmt.Errorf("--running-from-cluster: %w", err)
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return fmt.Errorf("--running-from-cluster: %w", err)
	}
	opts.Running = func(ctx context.Context) ([]map[string]any, error) {
		pods, _, err := controller.ListRunningPods(ctx, c, f.maxPods)
		return pods, err
	}
	opts.NamespaceLabels = func(ctx context.Context, name string) (map[string]string, bool, error) {
		return controller.NamespaceLabels(ctx, c, name)
	}
	return nil
}
