package suites

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"
	"sigs.k8s.io/e2e-framework/pkg/types"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/apisweep"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/rbac"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/secrets"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// typeSelfCheck features check bulkhead itself (here: that its evidence
// never carries a secret), not the cluster.
const typeSelfCheck = "self-check"

func TestSecrets(t *testing.T) {
	feats := checkFeatures(secrets.Checks())
	feats = append(feats, negativeFeatures(checks.Secrets, secrets.NegativeControls())...)
	feats = append(feats, noCanaryValueAnywhere())
	testenv.Test(t, feats...)
}

// noCanaryValueAnywhere runs every API check on a fresh sweep whose log is
// captured, and asserts that no canary value (raw or base64) appears in the
// results, in their JSON, JUnit and text renderings, in the sweep's log, in
// the raw output of any probe exec, or in this test's own log; the same for
// the run's own results and sweep. It first proves the scan finds a value
// planted on purpose, and that the evidence does name each canary by its
// fingerprint.
func noCanaryValueAnywhere() types.Feature {
	return features.New("self-check: no canary value appears in any result, report, log or probe output").
		WithLabel(labelArea, string(checks.Secrets)).
		WithLabel(labelType, typeSelfCheck).
		Assess("canary values are never written anywhere", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			var scan canaryScan
			logf := func(format string, args ...any) {
				line := fmt.Sprintf(format, args...)
				scan.add("test log", []byte(line+"\n"))
				t.Log(line)
			}

			// The scan must find what it looks for.
			var self canaryScan
			self.add("planted", []byte(`{"detail":"`+base64.StdEncoding.EncodeToString([]byte("bulkhead-canary-planted"))+`"}`))
			require.Equal(t, []string{"planted"}, self.find([][]byte{[]byte("bulkhead-canary-planted")}), "the scan finds a base64-encoded value")

			var logBuf lockedBuffer
			env := negativeEnv()
			env.Log = slog.New(slog.NewTextHandler(io.MultiWriter(&logBuf, os.Stderr), &slog.HandlerOptions{Level: slog.LevelDebug}))
			var results []reports.CheckResult
			for _, c := range append(rbac.Checks(), secrets.Checks()...) {
				res := checks.Execute(ctx, c, env)
				logf("%s: %s %s", res.ID, res.Verdict, res.Reason)
				for _, n := range res.Notes {
					logf("%s note: %s", res.ID, n)
				}
				assert.Equal(t, reports.Pass, res.Verdict, "%s: %s", res.ID, res.Reason)
				results = append(results, res)
			}
			sweep, err := apisweep.Shared(ctx, env)
			require.NoError(t, err)
			values := sweep.CanaryValues()
			require.NotEmpty(t, values, "the sweep planted canaries")
			require.Len(t, sweep.Canaries, len(values))
			scanResults(t, &scan, "fresh sweep", results)
			scan.add("sweep log", logBuf.Bytes())
			for i, out := range sweep.ProbeOutputs() {
				scan.add(fmt.Sprintf("probe output %d", i), out)
			}
			require.NotEmpty(t, sweep.ProbeOutputs(), "probes ran inside pods")

			// The evidence names every canary by its fingerprint.
			var all bytes.Buffer
			for _, res := range results {
				b, _ := json.Marshal(res)
				all.Write(b)
			}
			for _, c := range sweep.Canaries {
				assert.Contains(t, all.String(), c.Fingerprint, "%s is named by its fingerprint", c)
			}

			// The run's own results and its sweep (when the conformance
			// features ran), against the run's canaries.
			runRes := h.session.Results()
			scanResults(t, &scan, "run results", runRes.Checks)
			runSweep, err := apisweep.Shared(ctx, h.session.Env())
			require.NoError(t, err)
			for i, out := range runSweep.ProbeOutputs() {
				scan.add(fmt.Sprintf("run probe output %d", i), out)
			}
			values = append(values, runSweep.CanaryValues()...)

			logf("scanned %d texts (%d bytes) for %d canary values", len(scan.names), scan.size(), len(values))
			assert.Empty(t, scan.find(values), "canary values leaked into these")
			return ctx
		}).Feature()
}

// scanResults adds results to the scan in every form reports take.
func scanResults(t *testing.T, scan *canaryScan, name string, results []reports.CheckResult) {
	t.Helper()
	for _, res := range results {
		b, err := json.Marshal(res)
		require.NoError(t, err)
		scan.add(name+" "+res.ID+" JSON", b)
		scan.add(name+" "+res.ID+" evidence text", []byte(reports.EvidenceText(res)))
	}
	junit, err := reports.JUnit(&reports.Results{Schema: reports.Schema, Checks: results})
	require.NoError(t, err)
	scan.add(name+" JUnit", junit)
}

// canaryScan holds texts to search for secret values.
type canaryScan struct {
	names []string
	texts [][]byte
}

func (l *canaryScan) add(name string, text []byte) {
	l.names = append(l.names, name)
	l.texts = append(l.texts, bytes.Clone(text))
}

func (l *canaryScan) size() int {
	n := 0
	for _, t := range l.texts {
		n += len(t)
	}
	return n
}

// find names the texts that hold any value, raw or base64-encoded (as a
// Secret's data carries it).
func (l *canaryScan) find(values [][]byte) []string {
	var out []string
	for i, text := range l.texts {
		for _, v := range values {
			forms := [][]byte{v, []byte(base64.StdEncoding.EncodeToString(v)), []byte(base64.RawURLEncoding.EncodeToString(v))}
			hit := false
			for _, f := range forms {
				if len(f) > 0 && bytes.Contains(text, f) {
					hit = true
				}
			}
			if hit {
				out = append(out, l.names[i])
				break
			}
		}
	}
	return out
}

// lockedBuffer is a bytes.Buffer safe for concurrent log writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}
