package suites

import (
	"context"
	"fmt"
	"testing"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/network"
)

// BenchmarkNetworkMatrix measures the whole network matrix (every probe pod
// to every other, all address kinds and protocols, plus DNS) for 2 and 6
// isolated tenants (plus the control namespace). It reports the exec round
// trips used and the paths probed: the point of batching is that the cost
// grows with pods, not pairs, and the wall time stays near one connect
// timeout per round.
//
//	make bench-network
func BenchmarkNetworkMatrix(b *testing.B) {
	ctx := context.Background()
	added := 0
	for _, tenants := range []int{2, 6} {
		b.Run(fmt.Sprintf("tenants=%d", tenants), func(b *testing.B) {
			// The run has the reference tenants a and b; grow to the size asked.
			if need := tenants - 2 - added; need > 0 {
				extra := fixtures.ExtraTenants(h.session.RunID(), tenants-2)[added:]
				if err := h.session.AddTenants(ctx, extra...); err != nil {
					b.Fatalf("add tenants: %v", err)
				}
				added += need
			}
			env := h.session.Env()
			var m *network.Matrix
			for b.Loop() {
				var err error
				m, err = network.Probe(ctx, env, allPaths(env))
				if err != nil {
					b.Fatalf("probe matrix: %v", err)
				}
			}
			if !m.Settled {
				b.Errorf("the matrix did not settle (%d rounds)", m.Rounds)
			}
			for _, r := range m.Results {
				for _, pr := range r.Rounds {
					if pr.Match != network.Matched {
						b.Errorf("%s round %d: %s", r.Path, pr.N, pr.Observed)
					}
				}
			}
			b.ReportMetric(float64(m.Execs), "execs/op")
			b.ReportMetric(float64(len(m.Results)), "paths/op")
			b.ReportMetric(float64(m.Rounds), "rounds/op")
			b.ReportMetric(float64(len(env.Topology.Probes)), "pods")
			b.Logf("tenants=%d (+control and sentinel): %d pods, %d paths, %d exec round trips, %d round(s), %s",
				tenants, len(env.Topology.Probes), len(m.Results), m.Execs, m.Rounds, m.Elapsed)
		})
	}
}

// allPaths is the matrix the network checks probe, over TCP and UDP.
func allPaths(env *checks.Env) []network.Path {
	return append(network.MatrixPaths(env.Topology, network.DefaultProtocols), network.DNSPaths(env.Topology, "")...)
}
