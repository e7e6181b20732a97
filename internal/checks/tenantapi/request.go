package tenantapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
)

// Dry-run options: the request goes through authorization and admission
// and is then dropped.
var (
	DryRunCreate = metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldManager: fixtures.ManagedBy}
	DryRunPatch  = metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}, FieldManager: fixtures.ManagedBy}
)

// LabelPatch is the JSON merge patch that sets (or, for nil, removes) labels.
func LabelPatch(labels map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": labels}}) // maps of strings and nil always encode
	return b
}

// Timeout bounds one API request of a check.
const Timeout = 30 * time.Second

// WithTimeout bounds ctx by Timeout.
func WithTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, Timeout)
}

// Parallel runs f for 0..n-1 with at most limit at once.
func Parallel(n, limit int, f func(i int)) {
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			f(i)
		}()
	}
	wg.Wait()
}

// Suffix is a short random suffix for the names of objects a check
// creates for real, so reruns and concurrent runs never collide.
func Suffix() string {
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
