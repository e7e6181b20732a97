package interrupt

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkhead-k8s/bulkhead/internal/syncbuf"
)

func notify(t *testing.T) (context.Context, *Handler, chan os.Signal, chan int, *syncbuf.Buffer) {
	t.Helper()
	sigs, exits := make(chan os.Signal, 3), make(chan int, 3)
	var out syncbuf.Buffer
	ctx, h := Notify(context.Background(), Options{Out: &out, ExitCode: 2, Signals: sigs, Exit: func(code int) { exits <- code }})
	t.Cleanup(h.Stop)
	return ctx, h, sigs, exits, &out
}

// Every signal escalates alike: the first cancels, the second runs the
// fast undos and exits, a third exits at once.
func TestEscalation(t *testing.T) {
	for _, first := range []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP} {
		t.Run(first.String(), func(t *testing.T) {
			ctx, h, sigs, exits, out := notify(t)
			assert.Same(t, h, FromContext(ctx))
			undone := make(chan struct{})
			h.OnForce("run x", func(context.Context) error { close(undone); return nil })
			removed := false
			remove := h.OnForce("gone", func(context.Context) error { removed = true; return nil })
			remove()

			sigs <- first
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("the first signal did not cancel the context")
			}
			assert.Contains(t, context.Cause(ctx).Error(), Name(first))
			assert.Contains(t, out.String(), "bulkhead: "+Name(first)+": stopping")
			select {
			case <-undone:
				t.Fatal("the first signal ran the fast undo")
			case code := <-exits:
				t.Fatalf("the first signal exited (%d)", code)
			case <-time.After(100 * time.Millisecond):
			}

			sigs <- syscall.SIGTERM
			select {
			case <-undone:
			case <-time.After(5 * time.Second):
				t.Fatal("the second signal did not run the fast undo")
			}
			require.Equal(t, 2, <-exits)
			assert.False(t, removed, "an unregistered undo does not run")
			assert.Contains(t, out.String(), "fast undo of run x done")
		})
	}
}

func TestThirdSignalExitsAtOnce(t *testing.T) {
	_, h, sigs, exits, out := notify(t)
	h.OnForce("slow", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	sigs <- os.Interrupt
	sigs <- os.Interrupt
	sigs <- os.Interrupt
	select {
	case code := <-exits:
		assert.Equal(t, 2, code)
	case <-time.After(5 * time.Second):
		t.Fatal("the third signal did not exit")
	}
	assert.Contains(t, out.String(), "a third time")
}

func TestName(t *testing.T) {
	assert.Equal(t, "SIGINT", Name(os.Interrupt))
	assert.Equal(t, "SIGTERM", Name(syscall.SIGTERM))
	assert.Equal(t, "SIGHUP", Name(syscall.SIGHUP))
}

func TestNilHandler(t *testing.T) {
	var h *Handler
	assert.Nil(t, FromContext(context.Background()))
	h.OnForce("x", func(context.Context) error { return nil })()
	h.Stop()
}
