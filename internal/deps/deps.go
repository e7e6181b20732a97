// Package deps pins dependencies while the tree is being built up, so that
// parallel work never has to edit go.mod. Remove once every import is real.
package deps

import (
	_ "github.com/google/go-containerregistry/pkg/v1/mutate"
	_ "github.com/google/go-containerregistry/pkg/v1/tarball"
	_ "github.com/google/go-containerregistry/pkg/v1/empty"
	_ "github.com/jstemmer/go-junit-report/v2/junit"
	_ "github.com/santhosh-tekuri/jsonschema/v6"
	_ "github.com/spf13/cobra"
	_ "github.com/stretchr/testify/require"
	_ "github.com/vladimirvivien/gexe"
	_ "golang.org/x/sys/unix"
	_ "golang.org/x/term"
	_ "helm.sh/helm/v3/pkg/action"
	_ "helm.sh/helm/v3/pkg/chart/loader"
	_ "helm.sh/helm/v3/pkg/cli"
	_ "helm.sh/helm/v3/pkg/cli/values"
	_ "helm.sh/helm/v3/pkg/getter"
	_ "k8s.io/cli-runtime/pkg/genericclioptions"
	_ "k8s.io/client-go/kubernetes"
	_ "k8s.io/client-go/dynamic"
	_ "k8s.io/client-go/discovery"
	_ "k8s.io/client-go/tools/remotecommand"
	_ "sigs.k8s.io/e2e-framework/pkg/env"
	_ "sigs.k8s.io/e2e-framework/pkg/envconf"
	_ "sigs.k8s.io/e2e-framework/pkg/envfuncs"
	_ "sigs.k8s.io/e2e-framework/pkg/features"
	_ "sigs.k8s.io/e2e-framework/support"
	_ "sigs.k8s.io/kind/pkg/cluster"
	_ "sigs.k8s.io/kind/pkg/cluster/nodeutils"
	_ "sigs.k8s.io/yaml"
)
