package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	artifactcfg "github.com/fluxcd/pkg/artifact/config"
	runtimeclient "github.com/fluxcd/pkg/runtime/client"
	runtimectrl "github.com/fluxcd/pkg/runtime/controller"
	"github.com/fluxcd/pkg/runtime/leaderelection"
	"github.com/fluxcd/pkg/runtime/logger"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	ctrlcache "sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/pregate/pregate/config/admission"
	"github.com/pregate/pregate/config/v1alpha1"
	"github.com/pregate/pregate/gate/controller"
	"github.com/pregate/pregate/render/helm"
	"github.com/pregate/pregate/verify"
)

const controllerName = "pregate-controller"

// controllerFlags configure `pregate controller`.
type controllerFlags struct {
	metricsAddr, healthAddr string
	concurrent              int
	interval                time.Duration // retry interval
	lookupTimeout           time.Duration
	hostConcurrency         int
	cacheTTL                time.Duration
	cacheSize               int
	tufCache                string
	trustRefresh            time.Duration
	fetchRetries            int
	maxArtifactSize         int64
	chartCacheDir           string
	serviceAccount          string
	electionNamespace       string
	noRemoteBases           bool
	engines                 []string
	pcNamespace             string
	maxRunningPods          int
	artifacts               artifactcfg.Options

	client   runtimeclient.Options
	log      logger.Options
	election leaderelection.Options
	watch    runtimectrl.WatchOptions
}

func newControllerCmd() *cobra.Command {
	var f controllerFlags
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run the Kubernetes controller that verifies Flux revisions (Gate, TrustPolicy, TrustRoot)",
		Long: `controller reconciles Gate objects: for each new revision of the Flux source a
Gate references (directly, or through a Flux Kustomization), it fetches the
artifact, renders it as Flux will apply it, verifies every image against the
TrustPolicies the Gate selects, and reports the verdict in the Gate's status
conditions, Flux style. A Gate drops to Ready=Unknown, Reconciling=True as soon
as a new revision is seen, before any verification starts.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return f.run(cmd.Context()) },
	}
	fs := cmd.Flags()
	fs.StringVar(&f.metricsAddr, "metrics-addr", ":8080", "the address the Prometheus metrics endpoint binds to")
	fs.StringVar(&f.healthAddr, "health-addr", ":9440", "the address the health and readiness probes bind to")
	fs.IntVar(&f.concurrent, "concurrent", 4, "how many Gates are reconciled at once")
	fs.DurationVar(&f.interval, "retry-interval", 30*time.Second, "how soon a Gate that could not decide (unreachable registry, source not ready) is tried again")
	fs.DurationVar(&f.lookupTimeout, "lookup-timeout", verify.DefaultLookupTimeout, "the bound on each registry request")
	fs.IntVar(&f.hostConcurrency, "registry-host-concurrency", verify.DefaultHostConcurrency, "the bound on the requests in flight to one registry host, for all Gates")
	fs.DurationVar(&f.cacheTTL, "verdict-cache-ttl", verify.DefaultCacheTTL, "how long a verification of a digest against a policy is reused by every Gate")
	fs.IntVar(&f.cacheSize, "verdict-cache-size", 10000, "the most verdicts the cache holds")
	fs.StringVar(&f.tufCache, "tuf-cache", verify.DefaultTUFCacheDir(), "where TUF metadata of trust roots is cached")
	fs.DurationVar(&f.trustRefresh, "trust-root-refresh", controller.DefaultTrustRefresh, "how long the trust material of a TrustRoot (TUF metadata, trusted roots) is used before it is loaded again; a changed TrustRoot is loaded at once")
	fs.IntVar(&f.fetchRetries, "artifact-fetch-retries", 3, "how often a failed artifact download is retried")
	fs.Int64Var(&f.maxArtifactSize, "max-artifact-size", 50<<20, "the largest source artifact accepted, in bytes (extracted: 4 times that)")
	fs.StringVar(&f.chartCacheDir, "chart-cache-dir", "", "where HelmRelease charts fetched from their repositories are kept, by digest, for all Gates (default: in memory only)")
	fs.StringVar(&f.serviceAccount, "service-account", defaultServiceAccount(), "namespace/name of the controller's service account, whose image pull secrets every Gate may use (default: $RUNTIME_NAMESPACE/$RUNTIME_SERVICE_ACCOUNT)")
	fs.StringVar(&f.electionNamespace, "leader-election-namespace", os.Getenv("RUNTIME_NAMESPACE"), "the namespace of the leader election Lease (default: $RUNTIME_NAMESPACE; in a pod, its own namespace)")
	fs.BoolVar(&f.noRemoteBases, "no-remote-bases", false, "do not fetch remote kustomize bases, components and files: a kustomization that refers to one is a RemoteBase gap; set it as kustomize-controller's --no-remote-bases is set (default: fetched, as kustomize-controller does)")
	fs.StringArrayVar(&f.engines, "admission-engine", nil, "the admission engine release the cluster runs, whose way of reading signatures the admission predictions follow: "+
		"kyverno@1.19, policy-controller@0.15 (repeatable, one per engine; default the newest known: "+newestEngines()+")")
	fs.IntVar(&f.maxRunningPods, "max-running-pods", controller.DefaultMaxRunningPods, "how many running Pods are read at most, when a revision's admission policies are checked against what runs (more is an error, never a partial check)")
	fs.StringVar(&f.pcNamespace, "policy-controller-namespace", "cosign-system", "the namespace of policy-controller's config-policy-controller ConfigMap, whose no-match-policy the admission predictions follow (empty: its default, deny)")
	fs.StringVar(&f.artifacts.StoragePath, "storage-path", "", "where Gates with spec.artifact republish the revisions they allow, served to Flux over HTTP (a volume: a restarted controller serves what it served); empty: such Gates are refused")
	fs.StringVar(&f.artifacts.StorageAddress, "storage-addr", ":9090", "the address the artifact server binds to")
	fs.StringVar(&f.artifacts.StorageAdvAddress, "storage-adv-addr", "", "the address Flux downloads artifacts from, as the Service in manifests/ names it (default: this host at the --storage-addr port)")
	fs.DurationVar(&f.artifacts.ArtifactRetentionTTL, "artifact-retention-ttl", time.Minute, "how long an artifact no longer served is kept for downloads in flight")
	fs.IntVar(&f.artifacts.ArtifactRetentionRecords, "artifact-retention-records", 2, "how many artifacts of each Gate are kept, the one served included")
	f.client.BindFlags(fs)
	f.log.BindFlags(fs)
	f.election.BindFlags(fs)
	f.watch.BindFlags(fs)
	return cmd
}

func (f *controllerFlags) run(ctx context.Context) error {
	ctrl.SetLogger(logger.NewLogger(f.log))
	log := ctrl.Log.WithName("setup")

	scheme := runtime.NewScheme()
	if err := controller.AddToScheme(scheme); err != nil {
		return err
	}
	gates, err := runtimectrl.GetWatchSelector(f.watch)
	if err != nil {
		return fmt.Errorf("--watch-label-selector: %w", err)
	}
	engines, err := admission.ParseProfiles(f.engines)
	if err != nil {
		return fmt.Errorf("--admission-engine: %w", err)
	}
	var sa types.NamespacedName
	if f.serviceAccount != "" {
		ns, name, ok := splitNamespaced(f.serviceAccount)
		if !ok {
			return fmt.Errorf("--service-account %q: want namespace/name", f.serviceAccount)
		}
		sa = types.NamespacedName{Namespace: ns, Name: name}
	}

	mgr, err := ctrl.NewManager(runtimeclient.GetConfigOrDie(f.client), ctrl.Options{
		Scheme:                        scheme,
		Metrics:                       metricsserver.Options{BindAddress: f.metricsAddr},
		HealthProbeBindAddress:        f.healthAddr,
		LeaderElection:                f.election.Enable,
		LeaderElectionID:              leaderelection.GenerateID(controllerName, f.watch.LabelSelector),
		LeaderElectionNamespace:       f.electionNamespace,
		LeaderElectionReleaseOnCancel: f.election.ReleaseOnCancel,
		LeaseDuration:                 &f.election.LeaseDuration,
		RenewDeadline:                 &f.election.RenewDeadline,
		RetryPeriod:                   &f.election.RetryPeriod,
		Cache: ctrlcache.Options{
			ByObject: map[client.Object]ctrlcache.ByObject{&v1alpha1.Gate{}: {Label: gates}},
		},
		Client: client.Options{Cache: &client.CacheOptions{
			// Read when a Gate needs them, never listed or watched: the
			// controller only gets the ones Gates and policies name.
			DisableFor: controller.UncachedObjects(),
		}},
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return err
	}

	cache, err := verify.NewCache(f.cacheTTL, verify.WithCacheMaxEntries(f.cacheSize))
	if err != nil {
		return fmt.Errorf("--verdict-cache-ttl/--verdict-cache-size: %w", err)
	}
	requests := &verify.RequestCounter{}
	metrics := controller.NewMetrics(requests, cache)
	ctrlmetrics.Registry.MustRegister(metrics.Collectors()...)
	hosts, err := verify.NewHosts(verify.WithHostConcurrency(f.hostConcurrency))
	if err != nil {
		return fmt.Errorf("--registry-host-concurrency: %w", err)
	}

	r := &controller.GateReconciler{
		Client:                    mgr.GetClient(),
		EventRecorder:             mgr.GetEventRecorder(controllerName),
		ControllerName:            controllerName,
		Hosts:                     hosts,
		Cache:                     cache,
		RequestStats:              requests,
		LookupTimeout:             f.lookupTimeout,
		TUFCacheDir:               f.tufCache,
		TrustRefresh:              f.trustRefresh,
		RetryInterval:             f.interval,
		ArtifactFetchRetries:      f.fetchRetries,
		MaxArtifactSize:           f.maxArtifactSize,
		Charts:                    helm.NewCharts(helm.ChartsConfig{Dir: f.chartCacheDir}),
		NoRemoteBases:             f.noRemoteBases,
		Engines:                   engines,
		PolicyControllerNamespace: f.pcNamespace,
		APIReader:                 mgr.GetAPIReader(),
		MaxRunningPods:            f.maxRunningPods,
		RunningPodsReuse:          controller.DefaultRunningPodsReuse,
		Metrics:                   metrics,
	}
	if f.artifacts.StoragePath != "" {
		f.artifacts.ArtifactDigestAlgo = "sha256"
		artifacts, err := controller.NewArtifacts(f.artifacts)
		if err != nil {
			return fmt.Errorf("--storage-path: %w", err)
		}
		// A manager runnable: served by the elected leader only.
		if err := mgr.Add(artifacts); err != nil {
			return err
		}
		r.Artifacts = artifacts
	}
	if err := r.SetupWithManager(ctx, mgr, controller.Options{MaxConcurrentReconciles: f.concurrent, ServiceAccount: sa}); err != nil {
		return fmt.Errorf("setting up the Gate controller: %w", err)
	}
	log.Info("starting manager", "version", buildVersion().Version)
	return mgr.Start(ctx)
}

// defaultServiceAccount is the pod's own service account, as the Deployment
// in manifests/ passes it through the downward API.
func defaultServiceAccount() string {
	ns, name := os.Getenv("RUNTIME_NAMESPACE"), os.Getenv("RUNTIME_SERVICE_ACCOUNT")
	if ns == "" || name == "" {
		return ""
	}
	return ns + "/" + name
}

func splitNamespaced(s string) (string, string, bool) {
	ns, name, ok := strings.Cut(s, "/")
	return ns, name, ok && ns != "" && name != "" && !strings.Contains(name, "/")
}
