package image

import (
	"archive/tar"
	"context"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeProbe is a stand-in for the probe program: static, and prints a
// version line on "version" like the real one.
const fakeProbe = `package main

import (
	"fmt"
	"os"
)

var version = "unset"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "version" {
		fmt.Println("bulkhead-probe", version)
		return
	}
	os.Exit(2)
}
`

// writeModule writes a module with the given path whose ./probes package is
// src, and returns its root.
func writeModule(t *testing.T, modPath, src string) string {
	t.Helper()
	root := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(root, "go.mod"), []byte("module "+modPath+"\n\ngo 1.22\n"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "probes"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "probes", "main.go"), []byte(src), 0o644))
	return root
}

// buildFakeProbe compiles fakeProbe as a static linux binary for this host's
// architecture, with version stamped in.
func buildFakeProbe(t *testing.T, version string) string {
	t.Helper()
	root := writeModule(t, "example.com/fakeprobe", fakeProbe)
	bin := filepath.Join(t.TempDir(), "probe")
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags", "-s -w -X main.version="+version, "-o", bin, "./probes")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "build fake probe: %s", out)
	return bin
}

func layerFiles(t *testing.T, img v1.Image) (map[string]*tar.Header, map[string][]byte) {
	t.Helper()
	layers, err := img.Layers()
	require.NoError(t, err)
	require.Len(t, layers, 1)
	rc, err := layers[0].Uncompressed()
	require.NoError(t, err)
	defer rc.Close()

	hdrs := map[string]*tar.Header{}
	data := map[string][]byte{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		b, err := io.ReadAll(tr)
		require.NoError(t, err)
		hdrs[h.Name] = h
		data[h.Name] = b
	}
	return hdrs, data
}

// runVersion extracts the probe from the image and runs "probe version".
func runVersion(t *testing.T, probe []byte) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the probe is a linux binary")
	}
	bin := filepath.Join(t.TempDir(), "probe")
	require.NoError(t, os.WriteFile(bin, probe, 0o755))
	out, err := exec.Command(bin, "version").CombinedOutput()
	require.NoError(t, err, "probe version: %s", out)
	require.NotEmpty(t, strings.TrimSpace(string(out)))
	return string(out)
}

// checkImage asserts everything the cluster relies on about a built image.
func checkImage(t *testing.T, res Image, version string) []byte {
	t.Helper()
	repo, tag, ok := strings.Cut(res.Ref, ":")
	require.True(t, ok, res.Ref)
	assert.Equal(t, DefaultRepository, repo)
	assert.Regexp(t, `^[0-9a-f]{12}$`, tag)
	assert.Regexp(t, `^sha256:[0-9a-f]{64}$`, res.Digest)
	assert.FileExists(t, res.Tarball)

	img, err := Load(res.Tarball)
	require.NoError(t, err)
	d, err := img.Digest()
	require.NoError(t, err)
	assert.Equal(t, res.Digest, d.String())
	cfgName, err := img.ConfigName()
	require.NoError(t, err)
	assert.Equal(t, cfgName.Hex[:12], tag, "tag is the short image ID")

	cf, err := img.ConfigFile()
	require.NoError(t, err)
	assert.Equal(t, "linux", cf.OS)
	assert.Equal(t, runtime.GOARCH, cf.Architecture)
	assert.Equal(t, "65532:65532", cf.Config.User)
	assert.Equal(t, []string{"/probe"}, cf.Config.Entrypoint)
	assert.Equal(t, []string{"serve"}, cf.Config.Cmd)
	assert.Equal(t, "/", cf.Config.WorkingDir)
	assert.Equal(t, map[string]string{
		"org.opencontainers.image.title":   "bulkhead-probe",
		"org.opencontainers.image.version": version,
		"app.kubernetes.io/managed-by":     "bulkhead",
	}, cf.Config.Labels)
	assert.Equal(t, epoch, cf.Created.Time.UTC())
	require.Len(t, cf.RootFS.DiffIDs, 1)

	hdrs, data := layerFiles(t, img)
	probe := hdrs["probe"]
	require.NotNil(t, probe, "layer has /probe")
	assert.Equal(t, byte(tar.TypeReg), probe.Typeflag)
	assert.Equal(t, int64(0o755), probe.Mode)
	assert.Zero(t, probe.Uid)
	assert.Zero(t, probe.Gid)
	bin, err := os.ReadFile(res.Binary)
	require.NoError(t, err)
	assert.Equal(t, bin, data["probe"], "layer holds the packaged binary")

	require.Contains(t, hdrs, "etc/passwd")
	assert.Contains(t, string(data["etc/passwd"]), "nonroot:x:65532:65532:")
	assert.Contains(t, string(data["etc/passwd"]), "root:x:0:0:")
	require.Contains(t, hdrs, "etc/group")
	assert.Contains(t, string(data["etc/group"]), "nonroot:x:65532:")
	require.Contains(t, hdrs, "etc/")
	assert.Equal(t, byte(tar.TypeDir), hdrs["etc/"].Typeflag)
	require.Contains(t, hdrs, "tmp/")
	assert.Equal(t, byte(tar.TypeDir), hdrs["tmp/"].Typeflag)
	assert.Equal(t, int64(0o1777), hdrs["tmp/"].Mode)
	for n, h := range hdrs {
		assert.Equal(t, epoch, h.ModTime.UTC(), n)
	}
	return data["probe"]
}

func TestBuildFromBinary(t *testing.T) {
	bin := buildFakeProbe(t, "1.2.3")
	out := filepath.Join(t.TempDir(), "nested", "out")

	res, err := Build(context.Background(), Options{Binary: bin, OutDir: out, Version: "1.2.3"})
	require.NoError(t, err)
	assert.Equal(t, bin, res.Binary)
	assert.Equal(t, filepath.Join(out, "probe-image.tar"), res.Tarball)

	probe := checkImage(t, res, "1.2.3")
	assert.Equal(t, "bulkhead-probe 1.2.3\n", runVersion(t, probe))
}

func TestBuildIsDeterministic(t *testing.T) {
	bin := buildFakeProbe(t, "1.0.0")
	build := func(bin, version string) Image {
		res, err := Build(context.Background(), Options{Binary: bin, OutDir: t.TempDir(), Version: version})
		require.NoError(t, err)
		return res
	}

	a, b := build(bin, "1.0.0"), build(bin, "1.0.0")
	assert.Equal(t, a.Digest, b.Digest)
	assert.Equal(t, a.Ref, b.Ref)

	// A different binary must never reuse a tag.
	c := build(buildFakeProbe(t, "1.0.1"), "1.0.0")
	assert.NotEqual(t, a.Digest, c.Digest)
	assert.NotEqual(t, a.Ref, c.Ref)
}

func TestBuildCompilesModule(t *testing.T) {
	root := writeModule(t, ModulePath, fakeProbe)
	out := t.TempDir()

	res, err := Build(context.Background(), Options{ModuleRoot: root, OutDir: out, Version: "v9.9.9-test"})
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(out, "probe"), res.Binary)

	probe := checkImage(t, res, "v9.9.9-test")
	assert.Equal(t, "bulkhead-probe v9.9.9-test\n", runVersion(t, probe), "version stamped via -ldflags -X")
}

func TestBuildCompileErrorShowsCompilerOutput(t *testing.T) {
	root := writeModule(t, ModulePath, "package main\n\nfunc main() { undefinedThing() }\n")
	_, err := Build(context.Background(), Options{ModuleRoot: root, OutDir: t.TempDir()})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "go build ./probes")
	assert.Contains(t, err.Error(), "undefined: undefinedThing")
}

func TestBuildWithoutGoToolchain(t *testing.T) {
	root := writeModule(t, ModulePath, fakeProbe)
	t.Setenv("PATH", t.TempDir())
	_, err := Build(context.Background(), Options{ModuleRoot: root, OutDir: t.TempDir()})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "needs the Go toolchain")
	assert.Contains(t, err.Error(), "--probe-image")
}

func TestBuildRejectsBadInput(t *testing.T) {
	ctx := context.Background()
	notGo := filepath.Join(t.TempDir(), "probe")
	require.NoError(t, os.WriteFile(notGo, []byte("#!/bin/sh\necho hi\n"), 0o755))

	cases := []struct {
		name string
		opts Options
		want string
	}{
		{"no OutDir", Options{Binary: notGo}, "OutDir is required"},
		{"nothing to build", Options{OutDir: t.TempDir()}, "either ModuleRoot or Binary"},
		{"ModuleRoot without go.mod", Options{ModuleRoot: t.TempDir(), OutDir: t.TempDir()}, "no go.mod in"},
		{"ModuleRoot of another module", Options{ModuleRoot: writeModule(t, "example.com/other", fakeProbe), OutDir: t.TempDir()}, `holds module "example.com/other"`},
		{"missing binary", Options{Binary: filepath.Join(t.TempDir(), "nope"), OutDir: t.TempDir()}, "does not exist"},
		{"binary is a script", Options{Binary: notGo, OutDir: t.TempDir()}, "not a linux executable"},
		{"bad repository", Options{Binary: notGo, OutDir: t.TempDir(), Repository: "Bad Repo"}, "invalid repository"},
		{"version with spaces", Options{ModuleRoot: writeModule(t, ModulePath, fakeProbe), OutDir: t.TempDir(), Version: "1 2"}, "must not contain spaces"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build(ctx, tc.opts)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestBuildRejectsWrongArch(t *testing.T) {
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	_, err := Build(context.Background(), Options{Binary: buildFakeProbe(t, "x"), OutDir: t.TempDir(), GOARCH: other})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "but the nodes are "+other)
}

func TestBuildRejectsDynamicBinary(t *testing.T) {
	// Any dynamically linked host binary will do.
	var dyn string
	for _, p := range []string{"/bin/sh", "/bin/ls", "/usr/bin/env"} {
		f, err := elf.Open(p)
		if err != nil {
			continue
		}
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				dyn = p
			}
		}
		f.Close()
		if dyn != "" {
			break
		}
	}
	if dyn == "" {
		t.Skip("no dynamically linked ELF binary found on this host")
	}
	_, err := Build(context.Background(), Options{Binary: dyn, OutDir: t.TempDir()})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "dynamically linked")
}

func TestBuildHonoursContext(t *testing.T) {
	root := writeModule(t, ModulePath, fakeProbe)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Build(ctx, Options{ModuleRoot: root, OutDir: t.TempDir()})
	require.ErrorIs(t, err, context.Canceled)
}

func TestFindModuleRoot(t *testing.T) {
	wd, err := os.Getwd()
	require.NoError(t, err)
	root, err := FindModuleRoot(wd)
	require.NoError(t, err)
	assert.Equal(t, filepath.Dir(filepath.Dir(wd)), root, "probes/image is two levels below the module root")

	// A nested module with another path is walked past.
	outer := writeModule(t, ModulePath, fakeProbe)
	inner := filepath.Join(outer, "testdata", "other")
	require.NoError(t, os.MkdirAll(filepath.Join(inner, "deep"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(inner, "go.mod"), []byte("module example.com/other // comment\n"), 0o644))
	root, err = FindModuleRoot(filepath.Join(inner, "deep"))
	require.NoError(t, err)
	assert.Equal(t, outer, root)

	_, err = FindModuleRoot(t.TempDir())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no go.mod for module "+ModulePath)
}

// TestBuildRealProbe builds the actual probe program from this checkout.
func TestBuildRealProbe(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the real probe")
	}
	wd, err := os.Getwd()
	require.NoError(t, err)
	root, err := FindModuleRoot(wd)
	require.NoError(t, err)

	res, err := Build(context.Background(), Options{ModuleRoot: root, OutDir: t.TempDir(), Version: "v0.0.0-imagetest"})
	require.NoError(t, err)
	probe := checkImage(t, res, "v0.0.0-imagetest")
	out := runVersion(t, probe)
	t.Logf("probe version: %s", strings.TrimSpace(out))
	assert.Contains(t, out, "v0.0.0-imagetest", "main.version stamped via -ldflags -X")
}
