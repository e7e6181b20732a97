package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// progress shows what a run is doing. On a terminal the running checks
// (one per lane) are a live line with their elapsed times, replaced by
// their verdicts; elsewhere (CI logs, pipes) every event is one plain line.
type progress struct {
	w   io.Writer
	tty bool

	mu   sync.Mutex
	live map[int]running // by place in the selection
	stop chan struct{}   // ends the ticker while checks are live
}

type running struct {
	label   string // "[i/n] area ID title"
	short   string // "[i/n] ID", when more than one is live
	started time.Time
}

func newProgress(w io.Writer) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd())) && os.Getenv("TERM") != "dumb"
	}
	return &progress{w: w, tty: tty, live: map[int]running{}}
}

// Line prints a line, above the live line on a terminal.
func (p *progress) Line(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLive()
	fmt.Fprintf(p.w, format+"\n", args...)
	p.drawLive()
}

// CheckStarted announces check i of n.
func (p *progress) CheckStarted(c checks.Check, i, n int) {
	label := fmt.Sprintf("[%d/%d] %-11s %s", i, n, c.Area, c.Name())
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.tty {
		fmt.Fprintf(p.w, "%s ...\n", label)
		return
	}
	p.clearLive()
	p.live[i] = running{label: label, short: fmt.Sprintf("[%d/%d] %s", i, n, c.ID), started: time.Now()}
	if p.stop == nil {
		p.stop = make(chan struct{})
		go p.tick(p.stop)
	}
	p.drawLive()
}

func (p *progress) tick(stop chan struct{}) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			p.mu.Lock()
			p.drawLive()
			p.mu.Unlock()
		}
	}
}

// CheckFinished prints a check's verdict.
func (p *progress) CheckFinished(res reports.CheckResult, i, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLive()
	delete(p.live, i)
	if len(p.live) == 0 && p.stop != nil {
		close(p.stop)
		p.stop = nil
	}
	took := res.Finished.Sub(res.Started).Round(100 * time.Millisecond)
	line := fmt.Sprintf("[%d/%d] %s %s %s (%s)", i, n, verdictWord(res.Verdict, p.tty), res.ID, res.Title, took)
	if res.Reason != "" && res.Verdict != reports.Pass {
		line += "\n        " + truncate(res.Reason, 400)
	}
	fmt.Fprintln(p.w, line)
	p.drawLive()
}

// drawLive draws the running checks on one line, in selection order
// (short names when lanes run more than one: the line must not wrap).
func (p *progress) drawLive() {
	if !p.tty || len(p.live) == 0 {
		return
	}
	var parts []string
	for _, i := range slices.Sorted(maps.Keys(p.live)) {
		r := p.live[i]
		name := r.label
		if len(p.live) > 1 {
			name = r.short
		}
		parts = append(parts, fmt.Sprintf("%s (%s)", name, time.Since(r.started).Round(time.Second)))
	}
	fmt.Fprintf(p.w, "\r\033[2K  … %s", strings.Join(parts, "  ·  "))
}

func (p *progress) clearLive() {
	if p.tty && len(p.live) > 0 {
		fmt.Fprint(p.w, "\r\033[2K")
	}
}

func verdictWord(v reports.Verdict, color bool) string {
	word := strings.ToUpper(string(v))
	if !color {
		return fmt.Sprintf("%-7s", word)
	}
	code := map[reports.Verdict]string{reports.Pass: "32", reports.Fail: "31", reports.Error: "35", reports.Skipped: "33", reports.Waived: "36"}[v]
	return fmt.Sprintf("\033[%sm%-7s\033[0m", code, word)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// progressHandler turns the library's structured logs into progress lines:
// the message and its attributes, without timestamps.
type progressHandler struct {
	p     *progress
	level slog.Level
	attrs []slog.Attr
}

func (h *progressHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *progressHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	prefix := "  · "
	if r.Level >= slog.LevelWarn {
		prefix = "  ! "
	}
	b.WriteString(prefix + r.Message)
	add := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%s", a.Key, truncate(a.Value.String(), 200))
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	h.p.Line("%s", b.String())
	return nil
}

func (h *progressHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &progressHandler{p: h.p, level: h.level, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h *progressHandler) WithGroup(string) slog.Handler { return h }
