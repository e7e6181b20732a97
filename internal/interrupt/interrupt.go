// Package interrupt makes SIGINT (Ctrl-C), SIGTERM and SIGHUP escalate the
// same way in every bulkhead front end (the CLI and the e2e suites):
//
//  1. the first signal cancels the run's context: in-flight work stops, the
//     run writes what it can and cleans up thoroughly (waiting until its
//     objects are gone);
//  2. a second one runs the fast undos registered with OnForce (start the
//     deletion of everything carrying the run's labels, do not wait), at
//     most ForceTimeout, then exits;
//  3. a third one exits at once.
package interrupt

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Signals are the signals that interrupt a run.
var Signals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP}

// ForceTimeout bounds the fast undo of a second signal.
const ForceTimeout = 30 * time.Second

// Options configure Notify.
type Options struct {
	// Out receives one line per signal.
	Out io.Writer
	// ExitCode is what the process exits with after a second or third signal.
	ExitCode int
	// AfterFirst, when set, runs in its own goroutine after the first
	// signal (the suites use it to finish a run that does not stop by itself).
	AfterFirst func()
	// Exit and Signals replace os.Exit and signal.Notify in tests.
	Exit    func(int)
	Signals <-chan os.Signal
}

// Handler watches for signals and holds the fast undos.
type Handler struct {
	opts   Options
	cancel context.CancelCauseFunc
	stop   func()

	mu    sync.Mutex
	undos map[int]undo
	next  int
	count int
}

type undo struct {
	name string
	fn   func(context.Context) error
}

type ctxKey struct{}

// Notify returns a context that the first signal cancels (its cause names
// the signal), carrying the Handler (see FromContext).
func Notify(parent context.Context, opts Options) (context.Context, *Handler) {
	if opts.Out == nil {
		opts.Out = os.Stderr
	}
	if opts.Exit == nil {
		opts.Exit = os.Exit
	}
	h := &Handler{opts: opts, undos: map[int]undo{}}
	ctx, cancel := context.WithCancelCause(parent)
	h.cancel = cancel
	sigs := opts.Signals
	done := make(chan struct{})
	if sigs == nil {
		ch := make(chan os.Signal, 3)
		signal.Notify(ch, Signals...)
		sigs = ch
		h.stop = func() { signal.Stop(ch); close(done) }
	} else {
		h.stop = func() { close(done) }
	}
	go h.loop(sigs, done)
	return context.WithValue(ctx, ctxKey{}, h), h
}

// FromContext returns the Handler of ctx, or nil (whose methods do nothing).
func FromContext(ctx context.Context) *Handler {
	h, _ := ctx.Value(ctxKey{}).(*Handler)
	return h
}

// Stop stops watching for signals.
func (h *Handler) Stop() {
	if h != nil {
		h.stop()
	}
}

// OnForce registers a fast undo for a second signal; remove unregisters it
// (call it once what it undoes is gone).
func (h *Handler) OnForce(name string, fn func(context.Context) error) (remove func()) {
	if h == nil {
		return func() {}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	id := h.next
	h.next++
	h.undos[id] = undo{name, fn}
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.undos, id)
	}
}

func (h *Handler) loop(sigs <-chan os.Signal, done <-chan struct{}) {
	forced := make(chan struct{})
	for {
		var s os.Signal
		select {
		case <-done:
			return
		case s = <-sigs:
		}
		name := Name(s)
		h.mu.Lock()
		h.count++
		n := h.count
		h.mu.Unlock()
		switch n {
		case 1:
			fmt.Fprintf(h.opts.Out, "\nbulkhead: %s: stopping the run and cleaning up (again: fast undo and exit; a third time: exit at once)\n", name)
			h.cancel(fmt.Errorf("interrupted by %s", name))
			if h.opts.AfterFirst != nil {
				go h.opts.AfterFirst()
			}
		case 2:
			fmt.Fprintf(h.opts.Out, "\nbulkhead: %s again: fast undo (at most %s): deleting everything labelled with the run, then exiting; a third time exits at once\n", name, ForceTimeout)
			go func() {
				h.force()
				close(forced)
			}()
			go func() {
				<-forced
				h.opts.Exit(h.opts.ExitCode)
			}()
		default:
			fmt.Fprintf(h.opts.Out, "\nbulkhead: %s a third time: exiting now; `bulkhead cleanup` removes what is left once the run's Lease expires\n", name)
			h.opts.Exit(h.opts.ExitCode)
			return
		}
	}
}

// Name is a signal's name: SIGINT, SIGTERM, SIGHUP.
func Name(s os.Signal) string {
	if n, ok := s.(syscall.Signal); ok {
		if name := unix.SignalName(n); name != "" {
			return name
		}
	}
	return s.String()
}

// force runs every registered undo at once, bounded by ForceTimeout.
func (h *Handler) force() {
	h.mu.Lock()
	undos := make([]undo, 0, len(h.undos))
	for _, u := range h.undos {
		undos = append(undos, u)
	}
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), ForceTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, u := range undos {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			if err := u.fn(ctx); err != nil {
				fmt.Fprintf(h.opts.Out, "bulkhead: fast undo of %s incomplete: %v (`bulkhead cleanup` removes the rest once the run's Lease expires)\n", u.name, err)
				return
			}
			fmt.Fprintf(h.opts.Out, "bulkhead: fast undo of %s done in %s: deletion of everything labelled with it started\n", u.name, time.Since(start).Round(100*time.Millisecond))
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		fmt.Fprintf(h.opts.Out, "bulkhead: fast undo still running after %s; exiting\n", ForceTimeout)
	}
}
