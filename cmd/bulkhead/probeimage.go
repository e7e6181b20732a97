package main

import (
	"errors"
	"fmt"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/cobra"

	"github.com/bulkhead-k8s/bulkhead/internal/target"
	"github.com/bulkhead-k8s/bulkhead/probes/image"
)

func newProbeImageCommand() *cobra.Command {
	var out, push string
	cmd := &cobra.Command{
		Use:   "probe-image",
		Short: "Build the probe image (no Docker needed) and optionally push it",
		Long: `Build the probe image without a Docker daemon: a static probe binary on an
empty base, running as a non-root user. It is written as a docker-compatible
tarball (docker load / kind load image-archive / crane push), and with --push
sent to a registry using your Docker credentials ($DOCKER_CONFIG).
Use the pushed reference with ` + "`bulkhead run --probe-image`" + ` on real clusters.`,
		Example: `  bulkhead probe-image --out _output/probe
  bulkhead probe-image --push registry.example.com/platform/bulkhead-probe:v0.1.0`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t := target.Config{WorkDir: out}
			img, err := t.BuildProbeImage(cmd.Context())
			if err != nil {
				return cannot(err)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "built %s\ntarball: %s\n", img.Ref, img.Tarball)
			if push == "" {
				return nil
			}
			ref, err := pushProbeImage(cmd, img, push)
			if err != nil {
				return cannot(err)
			}
			fmt.Fprintf(w, "pushed %s\nuse: bulkhead run --probe-image %s ...\n", ref, ref)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "_output/probe", "directory for the binary and the image tarball")
	cmd.Flags().StringVar(&push, "push", "", "push the image to this reference (registry/repository:tag)")
	return cmd
}

// pushProbeImage pushes the built image and returns the pushed reference
// pinned by digest, which is what clusters should pull.
func pushProbeImage(cmd *cobra.Command, img image.Image, dest string) (string, error) {
	ref, err := name.ParseReference(dest)
	if err != nil {
		return "", fmt.Errorf("--push %q: %w", dest, err)
	}
	if _, ok := ref.(name.Digest); ok {
		return "", errors.New("--push needs a tag, not a digest")
	}
	v1img, err := image.Load(img.Tarball)
	if err != nil {
		return "", err
	}
	if err := remote.Write(ref, v1img, remote.WithContext(cmd.Context()), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	digest, err := v1img.Digest()
	if err != nil {
		return "", fmt.Errorf("digest of %s: %w", ref, err)
	}
	return ref.Context().Digest(digest.String()).String(), nil
}
