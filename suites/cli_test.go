package suites

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vladimirvivien/gexe"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ktypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/e2e-framework/klient/decoder"
	"sigs.k8s.io/e2e-framework/klient/k8s"
	"sigs.k8s.io/e2e-framework/klient/k8s/resources"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"
	"sigs.k8s.io/yaml"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/all"
	"github.com/bulkhead-k8s/bulkhead/probes/image"
)

// TestCLI drives the real bulkhead binary against tenants created outside
// bulkhead (kubectl-style manifests, one tenant spanning two namespaces):
// it passes on isolated tenants, fails with exit 1 naming an injected leak,
// and exits 2 with a clear message, leaving nothing behind, when it cannot
// run (missing permissions, probe pods that cannot be scheduled).
func TestCLI(t *testing.T) {
	f := features.New("bulkhead run against bring-your-own tenants").
		WithLabel(labelArea, "cli").
		Setup(setupBYO).
		Assess("isolated tenants pass (exit 0), as an identity holding only the runner ClusterRole", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			byo := ctx.Value(byoKey{}).(*byoTenants)
			code, out, run := byo.runWith(t, byo.runnerKubeconfig(ctx, t), false, "--areas", allAreas())
			require.Equal(t, 0, code, withNotPassed(out))
			assert.Contains(t, out, "NET-001")
			assert.NotContains(t, out, "FAIL")
			byo.assertNothingLeft(ctx, t, run)
			byo.assertReports(t, run)
			return ctx
		}).
		Assess("an injected leak fails the run (exit 1) and is named", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			byo := ctx.Value(byoKey{}).(*byoTenants)
			byo.apply(ctx, t, "leak.yaml")
			// The leak is in effect before the run starts: no need to wait
			// the default minute for policy enforcement on failing paths.
			code, out, run := byo.run(t, false, "--areas", "network", "--enforcement-timeout", "10s")
			require.Equal(t, 1, code, out)
			assert.Contains(t, out, "FAIL")
			assert.Contains(t, out, "NET-001")
			assert.Contains(t, out, byo.ns("blue-web")+"/bulkhead-probe-"+run, "names the leaking source")
			assert.Contains(t, out, "-> "+byo.ns("green")+"/bulkhead-probe-"+run, "names the leaking target")
			byo.assertNothingLeft(ctx, t, run)
			byo.remove(ctx, t, "leak.yaml")
			return ctx
		}).
		Assess("missing permissions: exit 2 naming them, nothing created", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			byo := ctx.Value(byoKey{}).(*byoTenants)
			limited := byo.impersonatingKubeconfig(t, cfg, "byo-"+byo.id+"-auditor-without-rights")
			code, out, run := byo.runWith(t, limited, false, "--areas", "network")
			require.Equal(t, 2, code, out)
			assert.Contains(t, out, "lacks permissions")
			assert.Contains(t, out, "create namespaces")
			assert.Contains(t, out, "create pods/exec")
			byo.assertNothingLeft(ctx, t, run)
			return ctx
		}).
		Assess("probe pods that cannot be scheduled: exit 2, nothing left", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			byo := ctx.Value(byoKey{}).(*byoTenants)
			code, out, run := byo.run(t, true, "--areas", "network")
			require.Equal(t, 2, code, out)
			assert.Contains(t, out, "cannot be scheduled")
			byo.assertNothingLeft(ctx, t, run)
			return ctx
		}).
		Teardown(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			return ctx // the namespaces go with t.Cleanup registered in apply
		}).Feature()
	testenv.Test(t, f)
}

type byoKey struct{}

// setupBYO creates the test's own tenants (testdata/byo/tenants.yaml) as a
// platform team would; they are removed when the test ends.
func setupBYO(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
	byo := newBYO(t, cfg)
	byo.apply(ctx, t, "tenants.yaml")
	byo.noDefaultTokens(ctx, t, byo.ns("blue-web"), byo.ns("blue-api"), byo.ns("green"))
	return context.WithValue(ctx, byoKey{}, byo)
}

// noDefaultTokens hardens the namespaces' default ServiceAccounts as a
// platform team does (automountServiceAccountToken: false), so these
// isolated tenants pass SEC-003 too. The controller creates the default
// ServiceAccount just after the namespace: wait for it, then patch it.
func (b *byoTenants) noDefaultTokens(ctx context.Context, t *testing.T, namespaces ...string) {
	t.Helper()
	patch := []byte(`{"automountServiceAccountToken":false}`)
	for _, ns := range namespaces {
		err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			_, err := h.clients.Core.CoreV1().ServiceAccounts(ns).Patch(ctx, "default", ktypes.MergePatchType, patch, metav1.PatchOptions{})
			if apierrors.IsNotFound(err) {
				return false, nil
			}
			return err == nil, err
		})
		require.NoError(t, err, "harden %s/default", ns)
	}
}

// byoTenants are the test's own tenants, created as a platform team would.
type byoTenants struct {
	id         string
	dir        string
	kubeconfig string
	res        *resources.Resources
}

func newBYO(t *testing.T, cfg *envconf.Config) *byoTenants {
	t.Helper()
	res, err := resources.New(h.clients.Config)
	require.NoError(t, err)
	kubeconfig := cfg.KubeconfigFile()
	if kubeconfig == "" {
		kubeconfig = clientcmd.RecommendedHomeFile
	}
	return &byoTenants{id: fixtures.NewRunID(), dir: t.TempDir(), kubeconfig: kubeconfig, res: res}
}

func (b *byoTenants) ns(name string) string { return "byo-" + b.id + "-" + name }

// render executes a testdata/byo template.
func (b *byoTenants) render(t *testing.T, name string, data map[string]any) []byte {
	t.Helper()
	funcs := template.FuncMap{
		"list":     func(s ...string) []string { return s },
		"tenantOf": func(ns string) string { return strings.SplitN(ns, "-", 2)[0] },
	}
	path := filepath.Join("testdata", "byo", name)
	if strings.Contains(name, "/") { // another set of testdata: "ordinary/tenants.yaml"
		path = filepath.Join("testdata", name)
	}
	tpl, err := template.New(filepath.Base(path)).Funcs(funcs).ParseFiles(path)
	require.NoError(t, err)
	if data == nil {
		data = map[string]any{}
	}
	data["ID"] = b.id
	var buf bytes.Buffer
	require.NoError(t, tpl.Execute(&buf, data))
	return buf.Bytes()
}

// apply creates a manifest's objects and removes them when the test ends.
func (b *byoTenants) apply(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	manifest := b.render(t, name, nil)
	require.NoError(t, decoder.DecodeEach(ctx, bytes.NewReader(manifest), decoder.CreateHandler(b.res)), "create %s", name)
	t.Cleanup(func() { b.remove(context.Background(), t, name) })
}

func (b *byoTenants) remove(ctx context.Context, t *testing.T, name string) {
	manifest := b.render(t, name, nil)
	err := decoder.DecodeEach(ctx, bytes.NewReader(manifest), decoder.DeleteIgnoreNotFound(b.res))
	assert.NoError(t, err, "delete %s", name)
}

// run runs `bulkhead run` on the tenants with the suite's kubeconfig.
func (b *byoTenants) run(t *testing.T, unschedulable bool, extra ...string) (int, string, string) {
	return b.runWith(t, b.kubeconfig, unschedulable, extra...)
}

func (b *byoTenants) runWith(t *testing.T, kubeconfig string, unschedulable bool, extra ...string) (int, string, string) {
	t.Helper()
	return b.runConfig(t, kubeconfig, "config.yaml", map[string]any{"Unschedulable": unschedulable}, extra...)
}

// runConfig runs `bulkhead run` with the config rendered from a
// testdata/byo template.
func (b *byoTenants) runConfig(t *testing.T, kubeconfig, template string, data map[string]any, extra ...string) (int, string, string) {
	t.Helper()
	config := filepath.Join(b.dir, fmt.Sprintf("config-%d.yaml", time.Now().UnixNano()))
	require.NoError(t, os.WriteFile(config, b.render(t, template, data), 0o644))
	run := fixtures.NewRunID()
	args := []string{"run", "--kubeconfig", kubeconfig, "--config", config, "--yes", "--run-id", run,
		"--probe-image", h.probe, "--report-dir", filepath.Join(b.dir, "reports")}
	args = append(args, extra...)
	if c := h.target.Context; c != "" && kubeconfig == b.kubeconfig {
		args = append(args, "--context", c)
	}
	code, out := runCLI(t, args)
	return code, out, run
}

// runCLI runs the bulkhead binary with args and returns its exit code and
// output (stdout and stderr). gexe runs it as a user would; the arguments
// hold no spaces or "$" (temporary paths, run IDs), which gexe would split
// or expand.
func runCLI(t *testing.T, args []string) (int, string) {
	t.Helper()
	proc := gexe.New().NewProc(bulkheadBinary(t) + " " + strings.Join(args, " "))
	var out bytes.Buffer
	proc.SetStdout(&out)
	proc.SetStderr(&out)
	proc.Run()
	t.Logf("bulkhead %s\n%s", strings.Join(args, " "), out.String())
	if !proc.Exited() {
		require.NoError(t, proc.Err(), "run bulkhead")
	}
	return proc.ExitCode(), out.String()
}

// runnerKubeconfig returns a kubeconfig for a ServiceAccount bound to
// nothing but the shipped runner ClusterRole (fixtures/rbac), with the
// ServiceAccount's own token: a run with it proves the ClusterRole is all
// bulkhead needs (impersonating it instead would not: Kubernetes does not
// chain impersonation, and bulkhead itself impersonates tenants).
func (b *byoTenants) runnerKubeconfig(ctx context.Context, t *testing.T) string {
	t.Helper()
	name := "byo-" + b.id + "-runner"
	var role rbacv1.ClusterRole
	require.NoError(t, yaml.UnmarshalStrict(fixtures.RunnerClusterRole, &role))
	role.ObjectMeta = metav1.ObjectMeta{Name: name} // run-unique: concurrent runs share a cluster
	objs := []k8s.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "runner", Namespace: name}},
		&role,
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "runner", Namespace: name}}},
	}
	for _, o := range objs {
		require.NoError(t, b.res.Create(ctx, o), "create %s", o.GetName())
		t.Cleanup(func() { assert.NoError(t, client.IgnoreNotFound(b.res.Delete(context.Background(), o))) })
	}
	tok, err := h.clients.Core.CoreV1().ServiceAccounts(name).CreateToken(ctx, "runner",
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	require.NoError(t, err)
	cfg := h.clients.Config
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData, CertificateAuthority: cfg.CAFile, InsecureSkipTLSVerify: cfg.Insecure}
	kc.AuthInfos["runner"] = &clientcmdapi.AuthInfo{Token: tok.Status.Token}
	kc.Contexts["runner"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "runner"}
	kc.CurrentContext = "runner"
	path := filepath.Join(b.dir, "runner.kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*kc, path))
	return path
}

// allAreas names every area, comma-separated.
func allAreas() string {
	var areas []string
	for _, c := range all.Registry().All() {
		if !slices.Contains(areas, string(c.Area)) {
			areas = append(areas, string(c.Area))
		}
	}
	return strings.Join(areas, ",")
}

// assertNothingLeft checks that run left nothing behind in the test's
// tenants (see assertNothingLeftIn).
func (b *byoTenants) assertNothingLeft(ctx context.Context, t *testing.T, run string) {
	t.Helper()
	assertRunLeftNothing(ctx, t, run, b.ns("blue-web"), b.ns("blue-api"), b.ns("green"))
}

// leftoverKinds are what a run may create in a tenant namespace.
var leftoverKinds = []schema.GroupVersionResource{
	{Version: "v1", Resource: "pods"}, {Version: "v1", Resource: "services"}, {Version: "v1", Resource: "secrets"},
	{Version: "v1", Resource: "configmaps"}, {Version: "v1", Resource: "persistentvolumeclaims"},
	{Group: "apps", Version: "v1", Resource: "deployments"}, {Group: "batch", Version: "v1", Resource: "jobs"},
	{Group: "networking.k8s.io", Version: "v1", Resource: "networkpolicies"},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"},
}

// assertRunLeftNothing checks that run left no namespace of its own (one
// being deleted is fine) and no object of any kind it may create in the
// tenant namespaces.
func assertRunLeftNothing(ctx context.Context, t *testing.T, run string, tenantNamespaces ...string) {
	t.Helper()
	sel := metav1.ListOptions{LabelSelector: fixtures.RunSelector(run)}
	nss, err := h.clients.Core.CoreV1().Namespaces().List(ctx, sel)
	require.NoError(t, err)
	for _, ns := range nss.Items {
		assert.NotNil(t, ns.DeletionTimestamp, "namespace %s of run %s is left behind", ns.Name, run)
	}
	for _, ns := range tenantNamespaces {
		for _, gvr := range leftoverKinds {
			list, err := h.clients.Dynamic.Resource(gvr).Namespace(ns).List(ctx, sel)
			require.NoError(t, err, "list %s in %s", gvr.Resource, ns)
			for _, o := range list.Items {
				if o.GetDeletionTimestamp() == nil {
					t.Errorf("%s %s/%s of run %s is left behind", gvr.Resource, ns, o.GetName(), run)
				}
			}
		}
	}
}

// assertReports checks the run wrote valid reports in every format where
// asked (see verifyReportDir: JUnit, OSCAL schema, HTML in chromium).
func (b *byoTenants) assertReports(t *testing.T, run string) {
	t.Helper()
	assert.NoError(t, verifyReportDir(context.Background(), filepath.Join(b.dir, "reports", run)), "reports of run %s", run)
}

// impersonatingKubeconfig writes a copy of the suite's kubeconfig that acts
// as user (who has no RBAC rights beyond discovery and self-review).
func (b *byoTenants) impersonatingKubeconfig(t *testing.T, cfg *envconf.Config, user string) string {
	t.Helper()
	raw, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: b.kubeconfig}, &clientcmd.ConfigOverrides{CurrentContext: h.target.Context}).RawConfig()
	require.NoError(t, err)
	ctxName := raw.CurrentContext
	if h.target.Context != "" {
		ctxName = h.target.Context
	}
	authName := raw.Contexts[ctxName].AuthInfo
	raw.AuthInfos[authName].Impersonate = user
	raw.CurrentContext = ctxName
	path := filepath.Join(b.dir, "limited.kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(raw, path))
	return path
}

var (
	cliOnce sync.Once
	cliPath string
	cliErr  error
)

// bulkheadBinary builds the CLI once per test binary.
func bulkheadBinary(t *testing.T) string {
	t.Helper()
	cliOnce.Do(func() {
		wd, err := os.Getwd()
		if err != nil {
			cliErr = err
			return
		}
		root, err := image.FindModuleRoot(wd)
		if err != nil {
			cliErr = err
			return
		}
		dir, err := os.MkdirTemp("", "bulkhead-cli")
		if err != nil {
			cliErr = err
			return
		}
		cliPath = filepath.Join(dir, "bulkhead")
		p := gexe.New().NewProc("go build -o " + cliPath + " ./cmd/bulkhead").SetWorkDir(root).Run()
		if !p.IsSuccess() {
			cliErr = fmt.Errorf("build bulkhead: %v: %s", p.Err(), p.Result())
		}
	})
	require.NoError(t, cliErr)
	return cliPath
}
