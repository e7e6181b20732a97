package apisweep

import (
	"fmt"
	"net/http"
	"strings"
)

// harmless refuses a request as PositiveControl (system:masters) that could
// change anything: only reads and server-side dry-run writes are made as it,
// and through a proxy subresource only GET /healthz. Every request from
// bulkhead's process passes through it before it is sent.
func harmless(a Attempt) error {
	if a.Via != ViaAdmin {
		return nil
	}
	switch {
	case a.Req.Exec != nil || len(a.Req.Headers) > 0:
		return fmt.Errorf("refused: %s as %s is an exec or carries headers", a.Req.Describe(), PositiveControl.User)
	case a.Req.Subresource == "proxy" && (a.Req.Method != http.MethodGet || !strings.HasSuffix(a.Req.Path, "/proxy/healthz")):
		return fmt.Errorf("refused: through a proxy %s only sends GET /healthz, not %s", PositiveControl.User, a.Req.Address())
	case a.Req.Method != http.MethodGet && !a.Req.DryRun:
		return fmt.Errorf("refused: %s as %s must be a server-side dry-run", a.Req.Address(), PositiveControl.User)
	}
	return nil
}
