package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/pregate/pregate/sources/sourcestest"
	"github.com/pregate/pregate/verify"
	"github.com/pregate/pregate/verify/verifytest"
)

// TestArgoCDHook builds the PreSync hook of manifests/argocd/hook as Argo
// CD builds an Application's kustomization (commonAnnotations with the
// build environment substituted) and runs its container's exact command
// line (arguments expanded from the downward API as the kubelet does,
// mounts mapped to local directories) with the real pregate binary,
// against a git server and a registry on loopback, at the revision Argo CD
// would sync: an earlier commit, whose image is signed, passes; the next
// one, adding an unsigned image, fails the hook with the verdict as the
// termination message; a missing path and refused credentials fail it
// saying so.
func TestArgoCDHook(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("e2e: runs the pregate binary; `make test` runs it")
	}
	bin := e2eBinary(t, "PREGATE_BIN", "the pregate binary", "make build", "bin/pregate")

	// A signed and an unsigned image, and a policy trusting the signer.
	registry := verifytest.NewRegistry(t, verifytest.WithReferrersAPI(true))
	sigstore := verifytest.NewSigstore(t)
	const signer, issuer = "https://github.com/acme/web/.github/workflows/release.yml@refs/heads/main", "https://token.actions.githubusercontent.com"
	ref, digest := verifytest.PushRandomImage(t, registry+"/acme/web:1.0")
	verifytest.PushBundle(t, ref, sigstore.MustSignImage(t, signer, issuer, digest), verify.CosignSignPredicateType)
	verifytest.PushRandomImage(t, registry+"/acme/worker:1.0")
	root := t.TempDir()
	policies := configMapVolume(t, filepath.Join(root, "policies"), "policies.yaml", fmt.Sprintf(`apiVersion: gate.pregate.dev/v1alpha1
kind: TrustRoot
metadata: {name: test}
spec:
  trustedRoot:
    data: '%s'
---
apiVersion: gate.pregate.dev/v1alpha1
kind: TrustPolicy
metadata: {name: acme}
spec:
  images: [{glob: "%s/**"}]
  trustRootRef: test
  authorities:
    - name: release
      insecureIgnoreSCT: true
      keyless:
        identities: [{issuer: %q, subject: %q}]
`, sigstore.TrustedRootJSON(), registry, issuer, signer))

	// The Application's repository: a commit Argo CD synced, then the one
	// it is about to sync.
	git := sourcestest.NewGitServer(t, sourcestest.WithGitBasicAuth("argocd", "repo-token"))
	good := git.Commit("deploy", map[string]string{"apps/prod/web.yaml": deploymentYAML("web", registry+"/acme/web:1.0")})
	bad := git.Commit("deploy", map[string]string{"apps/prod/worker.yaml": deploymentYAML("worker", registry+"/acme/worker:1.0")})
	repoURL := git.URL("deploy")
	creds := configMapVolume(t, filepath.Join(root, "git"), "username", "argocd")
	writeTestFile(t, filepath.Join(creds, "password"), "repo-token")
	wrongCreds := configMapVolume(t, filepath.Join(root, "wrong-git"), "username", "argocd")
	writeTestFile(t, filepath.Join(wrongCreds, "password"), "not-the-token")

	sentinel := newNetworkSentinel(t)
	hook := func(t *testing.T, revision, path, gitDir string, wantCode int) string {
		t.Helper()
		job := buildHookJob(t, map[string]string{
			"pregate.dev/revision": revision, "pregate.dev/repo-url": repoURL, "pregate.dev/path": path,
		})
		termination := filepath.Join(t.TempDir(), "termination-log")
		args := hookCommandLine(t, job, map[string]string{"policies": policies, "git": gitDir, "tmp": t.TempDir()}, termination)
		r := (&offlineBinary{bin: bin, dir: t.TempDir(), env: offlineEnv(t, t.TempDir(), sentinel), sentinel: sentinel}).run(t, args...)
		if r.code != wantCode {
			t.Fatalf("exit %d, want %d\n%s", r.code, wantCode, r)
		}
		msg, err := os.ReadFile(termination)
		if err != nil {
			t.Fatalf("no termination message: %v\n%s", err, r)
		}
		if len(msg) > 4096 {
			t.Errorf("termination message of %d bytes; the kubelet keeps 4096", len(msg))
		}
		return string(msg)
	}

	t.Run("allowed", func(t *testing.T) {
		t.Parallel()
		msg := hook(t, good, "apps/prod", creds, 0)
		if !strings.HasPrefix(msg, "pregate: ALLOWED revision sha1:"+good+": ") {
			t.Errorf("termination message %q, want the allowed verdict about %s", msg, good)
		}
	})
	t.Run("blocked", func(t *testing.T) {
		t.Parallel()
		msg := hook(t, bad, "apps/prod", creds, 1)
		for _, want := range []string{"pregate: BLOCKED revision sha1:" + bad + ": NoSignatures: ",
			"- Denied " + registry + "/acme/worker:1.0 at Deployment/apps/worker (apps/prod/worker.yaml): "} {
			if !strings.Contains(msg, want) {
				t.Errorf("termination message:\n%s\nwant %q", msg, want)
			}
		}
	})
	t.Run("missing path", func(t *testing.T) {
		t.Parallel()
		msg := hook(t, bad, "apps/staging", creds, 2)
		if !strings.HasPrefix(msg, "pregate: UNDECIDED: ") || !strings.Contains(msg, "no directory apps/staging") {
			t.Errorf("termination message %q, want it to name the missing path", msg)
		}
	})
	t.Run("refused credentials", func(t *testing.T) {
		t.Parallel()
		msg := hook(t, bad, "apps/prod", wrongCreds, 2)
		if !strings.Contains(msg, "the credentials given were refused") || strings.Contains(msg, "not-the-token") {
			t.Errorf("termination message %q, want the credentials refused, not shown", msg)
		}
	})
}

// configMapVolume lays out dir as the kubelet mounts a ConfigMap or
// Secret: the file is a symlink through ..data to a timestamped
// directory. It returns dir.
func configMapVolume(t *testing.T, dir, name, content string) string {
	t.Helper()
	data := filepath.Join(dir, "..2026_12_03_00_00_00.000000001")
	must(t, os.MkdirAll(data, 0o700))
	writeTestFile(t, filepath.Join(data, name), content)
	must(t, os.Symlink(filepath.Base(data), filepath.Join(dir, "..data")))
	must(t, os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)))
	return dir
}

// buildHookJob builds the hook as part of an Application with the
// annotations given, as Argo CD does with kustomize commonAnnotations and
// commonAnnotationsEnvsubst (the values are the substituted build
// environment), and returns its Job, checking what makes it a hook that
// stops the sync.
func buildHookJob(t *testing.T, annotations map[string]string) *batchv1.Job {
	t.Helper()
	hookDir, err := filepath.Abs(filepath.Join("..", "manifests", "argocd", "hook"))
	must(t, err)
	app := t.TempDir()
	rel, err := filepath.Rel(app, hookDir)
	must(t, err)
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [%q]\ncommonAnnotations:\n", rel)
	for k, v := range annotations {
		fmt.Fprintf(&b, "  %s: %q\n", k, v)
	}
	writeTestFile(t, filepath.Join(app, "kustomization.yaml"), b.String())
	opts := krusty.MakeDefaultOptions()
	opts.LoadRestrictions = types.LoadRestrictionsNone
	m, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), app)
	if err != nil {
		t.Fatalf("kustomize build of the hook: %v", err)
	}
	if n := len(m.Resources()); n != 1 {
		t.Fatalf("the hook builds to %d objects, want the Job", n)
	}
	obj, err := m.Resources()[0].Map()
	must(t, err)
	job := &batchv1.Job{}
	must(t, runtime.DefaultUnstructuredConverter.FromUnstructured(obj, job))
	pod := job.Spec.Template.Spec
	switch {
	case job.Kind != "Job" || job.Annotations["argocd.argoproj.io/hook"] != "PreSync" ||
		job.Annotations["argocd.argoproj.io/hook-delete-policy"] != "BeforeHookCreation":
		t.Errorf("%s %s annotated %v, want a PreSync hook deleted before the next one is created", job.Kind, job.Name, job.Annotations)
	case job.Spec.BackoffLimit == nil || *job.Spec.BackoffLimit != 0 || pod.RestartPolicy != corev1.RestartPolicyNever:
		t.Errorf("backoffLimit %v, restartPolicy %s: a blocked verdict must fail the Job at once", job.Spec.BackoffLimit, pod.RestartPolicy)
	case len(pod.Containers) != 1 || pod.Containers[0].TerminationMessagePolicy != corev1.TerminationMessageFallbackToLogsOnError:
		t.Errorf("containers %+v: want one, whose termination message falls back to its log", pod.Containers)
	case !strings.HasPrefix(pod.Containers[0].Image, "ghcr.io/pregate/pregate:"):
		t.Errorf("image %s, want pregate's", pod.Containers[0].Image)
	}
	return job
}

// annotationRef is a downward API reference to a pod annotation.
var annotationRef = regexp.MustCompile(`^metadata\.annotations\['([^']+)'\]$`)

// hookCommandLine is the Job's container's command line as the kubelet
// runs it: each $(VAR) of its arguments expanded from its environment,
// whose downward API values come from the pod template's annotations, and
// each path under a volume's mount moved to the directory dirs gives for
// the volume; the termination message path becomes termination.
func hookCommandLine(t *testing.T, job *batchv1.Job, dirs map[string]string, termination string) []string {
	t.Helper()
	c := job.Spec.Template.Spec.Containers[0]
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.FieldRef != nil && annotationRef.MatchString(e.ValueFrom.FieldRef.FieldPath):
			key := annotationRef.FindStringSubmatch(e.ValueFrom.FieldRef.FieldPath)[1]
			v, ok := job.Spec.Template.Annotations[key]
			if !ok {
				t.Fatalf("env %s reads annotation %s, which the pod template lacks (annotations %v)", e.Name, key, job.Spec.Template.Annotations)
			}
			env[e.Name] = v
		default:
			t.Fatalf("env %s: unexpected source %+v", e.Name, e.ValueFrom)
		}
	}
	mounts := map[string]string{c.TerminationMessagePath: termination}
	for _, m := range c.VolumeMounts {
		dir, ok := dirs[m.Name]
		if !ok {
			t.Fatalf("volume %s mounted at %s: no local directory for it", m.Name, m.MountPath)
		}
		mounts[m.MountPath] = dir
	}
	if c.TerminationMessagePath == "" {
		t.Fatal("the container has no terminationMessagePath")
	}
	expand := regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)
	args := append(append([]string(nil), c.Command...), c.Args...)
	for i, a := range args {
		a = expand.ReplaceAllStringFunc(a, func(ref string) string {
			if v, ok := env[ref[2:len(ref)-1]]; ok {
				return v
			}
			return ref
		})
		if flag, value, ok := strings.Cut(a, "="); ok {
			from := ""
			for m := range mounts {
				if (value == m || strings.HasPrefix(value, m+"/")) && len(m) > len(from) {
					from = m
				}
			}
			if from != "" {
				a = flag + "=" + mounts[from] + strings.TrimPrefix(value, from)
			}
		}
		args[i] = a
	}
	return args
}
