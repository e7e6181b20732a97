// Package image builds the bulkhead probe container image without a Docker
// daemon: it compiles the probe (or takes a prebuilt binary), packs it into a
// single-layer image on top of scratch and writes a docker-save style tarball
// that kind can side-load into its nodes.
package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

const (
	// ModulePath is the module the probe is built from.
	ModulePath = "github.com/bulkhead-k8s/bulkhead"
	// DefaultRepository is used when Options.Repository is empty.
	DefaultRepository = "bulkhead.local/probe"
	// DefaultVersion is used when Options.Version is empty.
	DefaultVersion = "dev"

	// UID and GID the probe runs as (matches the distroless "nonroot" user and
	// satisfies Pod Security "restricted" runAsNonRoot).
	UID = 65532
	GID = 65532

	binaryName  = "probe"
	tarballName = "probe-image.tar"
)

// epoch is used for every timestamp in the image so that the same binary
// always yields the same layer, config and therefore the same tag.
var epoch = time.Unix(0, 0).UTC()

// Options for Build.
type Options struct {
	// ModuleRoot is the directory holding bulkhead's go.mod (the probe is built from ./probes there).
	ModuleRoot string
	// Binary, if set, is a prebuilt static linux probe binary to package instead of compiling.
	Binary string
	// OutDir is where the binary and the tarball are written (created if missing).
	OutDir string
	// Repository is the image name without tag; default "bulkhead.local/probe".
	Repository string
	// Version is stamped into the binary (-ldflags -X main.version=...) and as an image label; default "dev".
	Version string
	// GOARCH of the nodes; default runtime.GOARCH. GOOS is always linux.
	GOARCH string
}

// Image is what Build produced.
type Image struct {
	// Ref is repository:tag, where the tag is the first 12 hex characters of
	// the config digest (the image ID), so a changed binary gets a new tag and
	// IfNotPresent pulls never run a stale image.
	Ref string
	// Tarball is the path of the docker-compatible tarball.
	Tarball string
	// Digest is the manifest digest as a registry would see it after a push.
	// containerd re-synthesizes the manifest on "ctr images import", so refer
	// to side-loaded images by Ref, not by digest.
	Digest string
	// Binary is the path of the binary that was packaged.
	Binary string
}

// Build compiles the probe (unless opts.Binary is set), packages it into an
// image and writes the image as a tarball into opts.OutDir.
func Build(ctx context.Context, opts Options) (Image, error) {
	if opts.OutDir == "" {
		return Image{}, errors.New("build probe image: OutDir is required")
	}
	if opts.Repository == "" {
		opts.Repository = DefaultRepository
	}
	if opts.Version == "" {
		opts.Version = DefaultVersion
	}
	if opts.GOARCH == "" {
		opts.GOARCH = runtime.GOARCH
	}
	repo, err := name.NewRepository(opts.Repository)
	if err != nil {
		return Image{}, fmt.Errorf("build probe image: invalid repository %q: %w", opts.Repository, err)
	}
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return Image{}, fmt.Errorf("build probe image: create output directory: %w", err)
	}

	bin := opts.Binary
	if bin == "" {
		if bin, err = compile(ctx, opts); err != nil {
			return Image{}, err
		}
	}
	if err := checkBinary(bin, opts.GOARCH); err != nil {
		return Image{}, fmt.Errorf("build probe image: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return Image{}, err
	}

	img, err := assemble(bin, opts.GOARCH, opts.Version)
	if err != nil {
		return Image{}, fmt.Errorf("build probe image: %w", err)
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return Image{}, fmt.Errorf("build probe image: config digest: %w", err)
	}
	digest, err := img.Digest()
	if err != nil {
		return Image{}, fmt.Errorf("build probe image: image digest: %w", err)
	}
	tag := repo.Tag(cfgName.Hex[:12])

	// Write next to the final path and rename, so a failed or interrupted
	// build never leaves a truncated tarball where a previous good one was.
	out := filepath.Join(opts.OutDir, tarballName)
	tmp := out + ".tmp"
	if err := tarball.WriteToFile(tmp, tag, img); err != nil {
		os.Remove(tmp)
		return Image{}, fmt.Errorf("build probe image: write tarball: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		os.Remove(tmp)
		return Image{}, fmt.Errorf("build probe image: write tarball: %w", err)
	}
	return Image{Ref: tag.String(), Tarball: out, Digest: digest.String(), Binary: bin}, nil
}

// Load reads an image tarball written by Build.
func Load(path string) (v1.Image, error) {
	img, err := tarball.ImageFromPath(path, nil)
	if err != nil {
		return nil, fmt.Errorf("load probe image %s: %w", path, err)
	}
	return img, nil
}

// compile builds ./probes in opts.ModuleRoot into opts.OutDir and returns the
// binary's path.
func compile(ctx context.Context, opts Options) (string, error) {
	if opts.ModuleRoot == "" {
		return "", errors.New("build probe: either ModuleRoot or Binary must be set")
	}
	if mod, err := modulePath(filepath.Join(opts.ModuleRoot, "go.mod")); err != nil {
		return "", fmt.Errorf("build probe: %s is not the bulkhead module root: %w", opts.ModuleRoot, err)
	} else if mod != ModulePath {
		return "", fmt.Errorf("build probe: %s holds module %q, not %s", opts.ModuleRoot, mod, ModulePath)
	}
	// ldflags is split on spaces by the go command, so keep the value simple.
	if strings.ContainsAny(opts.Version, " \t\r\n'\"") {
		return "", fmt.Errorf("build probe: version %q must not contain spaces or quotes", opts.Version)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", errors.New("building the probe image needs the Go toolchain; pass a prebuilt image with --probe-image instead")
	}
	outDir, err := filepath.Abs(opts.OutDir)
	if err != nil {
		return "", fmt.Errorf("build probe: %w", err)
	}
	bin := filepath.Join(outDir, binaryName)

	cmd := exec.CommandContext(ctx, goBin, "build",
		"-trimpath",
		// VCS stamping would make the binary (and the tag) depend on the
		// git state, and fails outright when git is missing or distrusts the
		// checkout owner.
		"-buildvcs=false",
		"-ldflags", "-s -w -X main.version="+opts.Version,
		"-o", bin,
		"./probes",
	)
	cmd.Dir = opts.ModuleRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+opts.GOARCH)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("build probe: %w", ctx.Err())
		}
		return "", fmt.Errorf("build probe: go build ./probes (GOOS=linux GOARCH=%s) failed: %w\n%s",
			opts.GOARCH, err, strings.TrimSpace(string(out)))
	}
	return bin, nil
}

// elfMachines maps GOARCH to the ELF machine a binary for it declares.
var elfMachines = map[string]elf.Machine{
	"amd64":   elf.EM_X86_64,
	"arm64":   elf.EM_AARCH64,
	"arm":     elf.EM_ARM,
	"386":     elf.EM_386,
	"ppc64le": elf.EM_PPC64,
	"s390x":   elf.EM_S390,
	"riscv64": elf.EM_RISCV,
}

// checkBinary rejects binaries that cannot run in a scratch image on the
// nodes: not ELF, the wrong architecture, or dynamically linked (there is no
// libc or loader in the image, which would surface only as a baffling
// "no such file or directory" when the pod starts).
func checkBinary(path, goarch string) error {
	f, err := elf.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("probe binary %s does not exist", path)
		}
		return fmt.Errorf("probe binary %s is not a linux executable: %w", path, err)
	}
	defer f.Close()
	if want, ok := elfMachines[goarch]; ok && f.Machine != want {
		return fmt.Errorf("probe binary %s is built for %s, but the nodes are %s", path, f.Machine, goarch)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("probe binary %s is dynamically linked; build it with CGO_ENABLED=0", path)
		}
	}
	return nil
}

// assemble builds the image: scratch plus one layer with the binary and a
// minimal /etc, configured to run as the non-root user.
func assemble(bin, goarch, version string) (v1.Image, error) {
	layerTar, err := layerContents(bin)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithCompressedCaching)
	if err != nil {
		return nil, fmt.Errorf("create layer: %w", err)
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: epoch},
			CreatedBy: "bulkhead: probe binary and /etc/passwd",
		},
	})
	if err != nil {
		return nil, fmt.Errorf("append layer: %w", err)
	}

	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = goarch
	cf.Created = v1.Time{Time: epoch}
	cf.Config.User = fmt.Sprintf("%d:%d", UID, GID)
	cf.Config.Entrypoint = []string{"/" + binaryName}
	cf.Config.Cmd = []string{"serve"}
	cf.Config.WorkingDir = "/"
	cf.Config.Labels = map[string]string{
		"org.opencontainers.image.title":   "bulkhead-probe",
		"org.opencontainers.image.version": version,
		"app.kubernetes.io/managed-by":     "bulkhead",
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("set config: %w", err)
	}
	return img, nil
}

// layerContents returns the uncompressed layer tarball. Paths are relative,
// as in layers produced by docker build; all headers are deterministic.
func layerContents(bin string) ([]byte, error) {
	probe, err := os.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("read probe binary: %w", err)
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/:/sbin/nologin\n", UID, GID)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", GID)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	entries := []struct {
		name string
		mode int64
		dir  bool
		data []byte
	}{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/group", mode: 0o644, data: []byte(group)},
		{name: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		// Owned by root and not writable by the probe user.
		{name: binaryName, mode: 0o755, data: probe},
		// Sticky and world-writable like a real /tmp, for anything that mounts
		// nothing there and still wants a scratch directory.
		{name: "tmp/", mode: 0o1777, dir: true},
	}
	for _, e := range entries {
		hdr := &tar.Header{
			Name:     e.name,
			Mode:     e.mode,
			Uid:      0,
			Gid:      0,
			ModTime:  epoch,
			Typeflag: tar.TypeReg,
			Size:     int64(len(e.data)),
		}
		if e.dir {
			hdr.Typeflag = tar.TypeDir
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("write layer entry %s: %w", e.name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("write layer entry %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("close layer: %w", err)
	}
	return buf.Bytes(), nil
}

// FindModuleRoot walks up from dir to the directory containing go.mod with
// module github.com/bulkhead-k8s/bulkhead.
func FindModuleRoot(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	for d := abs; ; d = filepath.Dir(d) {
		// Other modules (e.g. test fixtures) may sit inside ours, so keep
		// walking until the module path matches.
		if mod, err := modulePath(filepath.Join(d, "go.mod")); err == nil && mod == ModulePath {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("find module root: no go.mod for module %s in %s or any parent directory", ModulePath, abs)
		}
	}
}

// modulePath returns the module path declared in a go.mod file.
func modulePath(gomod string) (string, error) {
	f, err := os.Open(gomod)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("no go.mod in %s", filepath.Dir(gomod))
		}
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		rest, ok := strings.CutPrefix(line, "module")
		if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '\t') {
			continue
		}
		if i := strings.Index(rest, "//"); i >= 0 {
			rest = rest[:i]
		}
		return strings.Trim(strings.TrimSpace(rest), `"`+"`"), nil
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read %s: %w", gomod, err)
	}
	return "", fmt.Errorf("%s has no module directive", gomod)
}
