package verify_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/pregate/pregate/verify"
	"github.com/pregate/pregate/verify/verifytest"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// pullSecrets are two image pull secrets, as a Gate's Secrets hold them:
// a .dockerconfigjson and a legacy .dockercfg.
var pullSecrets = [][]byte{
	[]byte(`{"auths": {
		"ghcr.io": {"auth": "` + b64("gh-user:gh-pass") + `"},
		"https://index.docker.io/v1/": {"username": "hub-user", "password": "hub-pass"},
		"registry.example:5000/team": {"auth": "` + strings.TrimRight(b64("team-user:team-pass"), "=") + `"},
		"https://registry.example:5000": {"username": "reg-user", "password": "reg-pass"},
		"*.corp.example": {"username": "glob-user", "password": "glob-pass"},
		"eu.corp.example/exact": {"username": "exact-user", "password": "exact-pass"},
		"empty.example": {},
		"quay.io/org": {"identitytoken": "quay-refresh-token"},
		"HTTPS://Upper.Example/Team/": {"username": "upper-user", "password": "upper-pass"},
		"both.example": {"auth": "` + b64("auth-user:auth-pass") + `", "username": "field-user", "password": "field-pass"}
	}}`),
	[]byte(`{
		"ghcr.io": {"auth": "` + b64("second-user:second-pass") + `", "email": "ci@acme.example"},
		"legacy.example": {"auth": "` + b64("legacy-user:legacy:pass") + `", "email": "ci@acme.example"}
	}`),
}

func TestKeychainFromDockerConfigs(t *testing.T) {
	t.Parallel()
	kc, err := verify.KeychainFromDockerConfigs(pullSecrets...)
	if err != nil {
		t.Fatalf("KeychainFromDockerConfigs() = %v", err)
	}
	anonymous := authn.AuthConfig{}
	basic := func(u, p string) authn.AuthConfig { return authn.AuthConfig{Username: u, Password: p} }
	for repo, want := range map[string]authn.AuthConfig{
		"ghcr.io/acme/app":                 basic("gh-user", "gh-pass"), // the first config wins a tie
		"nginx":                            basic("hub-user", "hub-pass"),
		"docker.io/library/nginx":          basic("hub-user", "hub-pass"),
		"index.docker.io/acme/app":         basic("hub-user", "hub-pass"),
		"registry.example:5000/team":       basic("team-user", "team-pass"),
		"registry.example:5000/team/app":   basic("team-user", "team-pass"),
		"registry.example:5000/team-b/app": basic("reg-user", "reg-pass"), // whole segments only
		"registry.example/team/app":        anonymous,                     // the port must match
		"registry.example:5001/team/app":   anonymous,
		"eu.corp.example/app":              basic("glob-user", "glob-pass"),
		"eu.corp.example/exact/app":        basic("exact-user", "exact-pass"), // a longer path beats a glob
		"a.eu.corp.example/app":            anonymous,                         // one label per *
		"corp.example/app":                 anonymous,
		"empty.example/app":                anonymous, // no credentials: ignored
		"quay.io/org/app":                  {IdentityToken: "quay-refresh-token"},
		"quay.io/other/app":                anonymous,
		"both.example/app":                 basic("auth-user", "auth-pass"), // auth overrides the fields
		"legacy.example/app":               basic("legacy-user", "legacy:pass"),
		"elsewhere.example/app":            anonymous,
		"upper.example/team/app":           basic("upper-user", "upper-pass"),
	} {
		r, err := name.NewRepository(repo)
		if err != nil {
			t.Fatalf("parsing %q: %v", repo, err)
		}
		auth, err := kc.Resolve(r)
		if err != nil {
			t.Errorf("Resolve(%s) = %v", repo, err)
			continue
		}
		if want == anonymous {
			if auth != authn.Anonymous {
				t.Errorf("Resolve(%s) = %v, want authn.Anonymous", repo, auth)
			}
			continue
		}
		got, err := authn.Authorization(t.Context(), auth)
		if err != nil {
			t.Fatalf("Authorization(%s) = %v", repo, err)
		}
		if diff := cmp.Diff(want, *got); diff != "" {
			t.Errorf("Resolve(%s) (-want +got):\n%s", repo, diff)
		}
	}
}

func TestKeychainFromDockerConfigs_dockerHubAliases(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"docker.io", "https://docker.io", "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v2/"} {
		kc, err := verify.KeychainFromDockerConfigs([]byte(`{"auths": {"` + key + `": {"username": "u", "password": "p"}}}`))
		if err != nil {
			t.Fatalf("KeychainFromDockerConfigs(%s) = %v", key, err)
		}
		for _, img := range []string{"nginx", "docker.io/acme/app"} {
			r, _ := name.ParseReference(img)
			if auth, err := kc.Resolve(r.Context()); err != nil || auth == authn.Anonymous {
				t.Errorf("key %q: Resolve(%s) = %v, %v; want the credentials", key, img, auth, err)
			}
		}
	}
}

// TestKeychainFromDockerConfigs_multiKeychain: a Gate's Secrets first, the
// controller's own credentials for everything else.
func TestKeychainFromDockerConfigs_multiKeychain(t *testing.T) {
	t.Parallel()
	kc, err := verify.KeychainFromDockerConfigs(pullSecrets...)
	if err != nil {
		t.Fatal(err)
	}
	fallback := keychain{&authn.Basic{Username: "controller", Password: "controller-pass"}}
	multi := authn.NewMultiKeychain(kc, fallback)
	for repo, wantUser := range map[string]string{
		"ghcr.io/acme/app":      "gh-user",
		"elsewhere.example/app": "controller",
	} {
		r, _ := name.NewRepository(repo)
		auth, err := multi.Resolve(r)
		if err != nil {
			t.Fatalf("Resolve(%s) = %v", repo, err)
		}
		cfg, err := authn.Authorization(t.Context(), auth)
		if err != nil || cfg.Username != wantUser {
			t.Errorf("Resolve(%s) = %+v, %v; want user %s", repo, cfg, err, wantUser)
		}
	}
	for _, nothing := range [][][]byte{
		nil,
		{[]byte(`{}`)},
		{[]byte(`{"auths": {}}`)},
		{[]byte(`{"credsStore": "desktop", "credHelpers": {"ghcr.io": "gh"}}`)}, // no helper is run
	} {
		kc, err := verify.KeychainFromDockerConfigs(nothing...)
		if err != nil {
			t.Errorf("KeychainFromDockerConfigs(%q) = %v, want a keychain without credentials", nothing, err)
			continue
		}
		if auth, _ := kc.Resolve(name.MustParseReference("ghcr.io/acme/app").Context()); auth != authn.Anonymous {
			t.Errorf("KeychainFromDockerConfigs(%q) resolved %v, want authn.Anonymous", nothing, auth)
		}
	}
}

// TestKeychainFromDockerConfigs_errors: malformed configs are errors that
// say where, and never what the config holds.
func TestKeychainFromDockerConfigs_errors(t *testing.T) {
	t.Parallel()
	const secret = "hunter2-top-secret"
	good := []byte(`{"auths": {"ghcr.io": {"username": "u", "password": "p"}}}`)
	for name, tc := range map[string]struct {
		config string
		want   string
	}{
		"not JSON":                 {`{"auths": {"ghcr.io": {"password": "` + secret + `"`, "docker config 2: not valid JSON"},
		"not an object":            {`["` + secret + `"]`, "docker config 2: not a JSON object"},
		"auths not an object":      {`{"auths": ["` + secret + `"]}`, `docker config 2: "auths" is not a JSON object`},
		"an entry not an object":   {`{"auths": {"ghcr.io": "` + secret + `"}}`, `docker config 2: registry "ghcr.io": the entry is not an object of strings`},
		"a number for a password":  {`{"auths": {"ghcr.io": {"username": "` + secret + `", "password": 12345678901}}}`, `registry "ghcr.io": the entry is not an object of strings`},
		"auth not base64":          {`{"auths": {"ghcr.io": {"auth": "` + secret + `!"}}}`, `registry "ghcr.io": "auth" is not base64`},
		"auth without a colon":     {`{"auths": {"ghcr.io": {"auth": "` + b64(secret) + `"}}}`, `registry "ghcr.io": "auth" is not base64 of user:password`},
		"auth without a user":      {`{"auths": {"ghcr.io": {"auth": "` + b64(":"+secret) + `"}}}`, `"auth" is not base64 of user:password`},
		"user info in the key":     {`{"auths": {"https://me:` + secret + `@ghcr.io": {"username": "u", "password": "p"}}}`, `registry "ghcr.io": the key holds user info`},
		"not a host":               {`{"auths": {"https://ghcr.io:` + secret + `": {"username": "u", "password": "p"}}}`, "a registry key is not a registry host"},
		"a query in the key":       {`{"auths": {"ghcr.io/x?token=` + secret + `": {"username": "u", "password": "p"}}}`, `registry "ghcr.io": the key holds a query or fragment`},
		"a malformed host pattern": {`{"auths": {"[.example": {"username": "u", "password": "p"}}}`, "not a registry host"},
		"legacy, not base64":       {`{"ghcr.io": {"auth": "` + secret + `~", "email": "x"}}`, `docker config 2: registry "ghcr.io": "auth" is not base64`},
	} {
		kc, err := verify.KeychainFromDockerConfigs(good, []byte(tc.config))
		if err == nil {
			t.Errorf("%s: KeychainFromDockerConfigs() = %v, want an error", name, kc)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: KeychainFromDockerConfigs() = %q, want it to contain %q", name, err, tc.want)
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), b64(secret)) {
			t.Errorf("%s: KeychainFromDockerConfigs() = %q, which quotes the config's secret", name, err)
		}
	}
}

// TestKeychainFromDockerConfigs_printsNoCredentials: whatever a caller
// prints the keychain with, no credential shows.
func TestKeychainFromDockerConfigs_printsNoCredentials(t *testing.T) {
	t.Parallel()
	kc, err := verify.KeychainFromDockerConfigs(pullSecrets...)
	if err != nil {
		t.Fatal(err)
	}
	out := fmt.Sprintf("%v %+v %#v %s %q", kc, kc, kc, kc, kc)
	for _, secret := range []string{"gh-pass", "hub-pass", "team-pass", "quay-refresh-token", b64("gh-user:gh-pass")} {
		if strings.Contains(out, secret) {
			t.Errorf("printing the keychain shows %q: %s", secret, out)
		}
	}
	if !strings.Contains(out, "ghcr.io") {
		t.Errorf("printing the keychain = %s, want the registries it has credentials for", out)
	}
}

// TestKeychainFromDockerConfigs_credentialsNeverLeak verifies through a
// registry that demands basic auth with credentials from a pull secret, and
// whose error answers repeat them: the Authorization header, and the
// password in plain text. No Result, Lookup or error carries them.
func TestKeychainFromDockerConfigs_credentialsNeverLeak(t *testing.T) {
	t.Parallel()
	const user, pass = "robot$acme", "pull-s3cret-pa55"
	secrets := []string{pass, b64(user + ":" + pass)}
	ss := verifytest.NewSigstore(t)
	// Without the referrers API the signature is in the fallback tag, which
	// the failing referrers call does not stop.
	host := verifytest.NewRegistry(t, verifytest.WithReferrersAPI(false))
	img, dig := verifytest.PushRandomImage(t, host+"/app:v1")
	verifytest.PushBundle(t, img, ss.MustSignImage(t, goodIdentity, ghIssuer, dig), verifytest.CosignSignPredicateType)
	verifytest.PushRandomImage(t, host+"/app:broken")
	front := verifytest.NewFront(t, host, verifytest.WithBasicAuth(user, pass))
	front.On(`/referrers/`, verifytest.EchoAuthorization(http.StatusInternalServerError))
	front.On(`\.att$`, verifytest.Respond(http.StatusBadGateway, "application/json",
		[]byte(`{"errors": [{"code": "UNKNOWN", "message": "password `+pass+` is about to expire"}]}`)))
	front.On(`/manifests/broken$`, verifytest.EchoAuthorization(http.StatusInternalServerError))

	config := func(u, p string) []byte {
		return []byte(`{"auths": {"` + front.Host() + `": {"auth": "` + b64(u+":"+p) + `"}}}`)
	}
	kc, err := verify.KeychainFromDockerConfigs(config(user, pass))
	if err != nil {
		t.Fatal(err)
	}
	wrong, err := verify.KeychainFromDockerConfigs(config(user, "wrong-pa55word"))
	if err != nil {
		t.Fatal(err)
	}
	policy := firstPartyPolicy(ss.Material())
	verifier := func(kc authn.Keychain) *verify.Verifier {
		return newTestVerifier(t, newRegistry(t, verify.WithKeychain(kc)), policy)
	}
	v := verifier(kc)

	var texts []string
	add := func(res verify.Result, err error) verify.Result {
		b, jerr := json.Marshal(res)
		if jerr != nil {
			t.Fatal(jerr)
		}
		texts = append(texts, string(b))
		if err != nil {
			texts = append(texts, err.Error())
		}
		return res
	}
	signed := add(v.Explain(t.Context(), front.Host()+"/app:v1", policy.Name))
	broken := add(v.Explain(t.Context(), front.Host()+"/app:broken", policy.Name))
	denied := add(verifier(wrong).Explain(t.Context(), front.Host()+"/app:v1", policy.Name))

	if signed.Status != verify.Verified {
		t.Errorf("Explain(app:v1) = %s (%s), want Verified through the pull secret's credentials", signed.Status, signed.Detail)
	}
	if broken.Status != verify.ResolveFailed || !strings.Contains(broken.Detail, "REDACTED") {
		t.Errorf("Explain(app:broken) = %s (%s), want ResolveFailed with the echoed credentials redacted", broken.Status, broken.Detail)
	}
	if denied.Status != verify.ResolveFailed || !strings.Contains(denied.Detail, "401") {
		t.Errorf("Explain() with a wrong password = %s (%s), want ResolveFailed on a 401", denied.Status, denied.Detail)
	}
	echoed := 0
	for _, l := range signed.Lookups {
		if strings.Contains(l.Err, "REDACTED") {
			echoed++
		}
	}
	if echoed != 2 {
		t.Errorf("Explain(app:v1) lookups = %+v, want the referrers and .att answers with their echoes redacted", signed.Lookups)
	}
	for _, text := range texts {
		for _, sec := range append(secrets, "wrong-pa55word") {
			if strings.Contains(text, sec) {
				t.Errorf("%s carries a credential", text)
			}
		}
	}
}

// TestRegistries_shareTransportAndStats builds a Registry per set of
// credentials, as a controller does per Gate, over one transport and one
// RequestCounter, and uses them all at once.
func TestRegistries_shareTransportAndStats(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t, verifytest.WithReferrersAPI(true))
	img, _ := verifytest.PushRandomImage(t, host+"/app:v1")
	verifytest.PushBundle(t, img, bundle("sig"), verifytest.CosignSignPredicateType)
	private := verifytest.NewFront(t, host, verifytest.WithBasicAuth("gate-a", "pass-a"))
	public := verifytest.NewFront(t, host)
	transport := remote.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(transport.CloseIdleConnections)
	counter := &verify.RequestCounter{}

	newGateRegistry := func(user, pass string) *verify.Registry {
		kc, err := verify.KeychainFromDockerConfigs([]byte(`{"auths": {"` + private.Host() + `": {"username": "` + user + `", "password": "` + pass + `"}}}`))
		if err != nil {
			t.Fatal(err)
		}
		return newRegistry(t, verify.WithKeychain(kc), verify.WithTransport(transport), verify.WithStats(counter))
	}
	regs := []*verify.Registry{newGateRegistry("gate-a", "pass-a"), newGateRegistry("gate-b", "wrong"), newGateRegistry("gate-a", "pass-a")}

	const rounds = 4
	errs := make([][]error, len(regs))
	var wg sync.WaitGroup
	for i, r := range regs {
		errs[i] = make([]error, 2*rounds)
		for j := range rounds {
			for k, front := range []*verifytest.Front{private, public} {
				wg.Go(func() {
					s, _, err := r.Resolve(t.Context(), front.Host()+"/app:v1")
					if err == nil {
						if d := r.Discover(t.Context(), s); len(d.Artifacts) != 1 || len(d.Failures()) > 0 {
							err = fmt.Errorf("Discover() = %+v, want one artifact", d)
						}
					}
					errs[i][2*j+k] = err
				})
			}
		}
	}
	wg.Wait()
	for i := range regs {
		for n, err := range errs[i] {
			onPrivate := n%2 == 0
			if wantErr := i == 1 && onPrivate; (err != nil) != wantErr {
				t.Errorf("Registry %d, request set %d: %v; want an error: %t (only gate-b's password is wrong)", i, n, err, wantErr)
			}
		}
	}

	total := counter.Snapshot()
	sum, byHost := 0, map[string]map[int]int{}
	for _, r := range regs {
		s := r.Requests()
		sum += s.Total
		for h, m := range s.ByHost {
			if byHost[h] == nil {
				byHost[h] = map[int]int{}
			}
			for status, n := range m {
				byHost[h][status] += n
			}
		}
	}
	if total.Total != sum || total.Total == 0 {
		t.Errorf("the shared counter counted %d requests, the Registries %d in all", total.Total, sum)
	}
	if diff := cmp.Diff(byHost, total.ByHost); diff != "" {
		t.Errorf("shared counter by host (-sum of Registries +shared):\n%s", diff)
	}
	if total.ByHost[private.Host()][http.StatusUnauthorized] == 0 {
		t.Errorf("the shared counter has no 401 from %s: %v", private.Host(), total.ByHost)
	}

	// A Snapshot is a copy.
	total.ByHost[public.Host()][http.StatusOK] = -1
	if counter.Snapshot().ByHost[public.Host()][http.StatusOK] == -1 {
		t.Error("changing a Snapshot changed the counter")
	}
}

func TestWithStats_nil(t *testing.T) {
	t.Parallel()
	if _, err := verify.NewRegistry(verify.WithStats(nil)); err == nil {
		t.Error("NewRegistry(WithStats(nil)) = nil error, want one")
	}
	var c verify.RequestCounter // the zero value is ready
	if s := c.Snapshot(); s.Total != 0 || len(s.ByHost) != 0 {
		t.Errorf("zero RequestCounter Snapshot() = %+v, want nothing counted", s)
	}
}
