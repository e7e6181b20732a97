package reports

import (
	"fmt"
	"strings"
	"time"
)

// MarkdownFile is the Markdown summary's file name inside a report directory.
const MarkdownFile = "summary.md"

// mdFailingListed bounds how many failing observations a failure lists.
const mdFailingListed = 5

// describeObservation names one observation compactly:
// "ns-a/probe-0 -> ns-b/probe-1 tcp/pod-ip: reachable (want blocked)".
func describeObservation(o Observation) string {
	from := actorKey(o.Actor)
	if from == "" {
		from = o.Actor.Namespace
	}
	to := targetKey(o.Target)
	if to == "" {
		to = o.Target.Namespace
	}
	return fmt.Sprintf("%s -> %s %s: %s (want %s)", from, to, o.Method, o.Observed, o.Expected)
}

// mdCell makes s safe inside a Markdown table cell: one line, pipes and
// markup characters escaped.
func mdCell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	r := strings.NewReplacer(`\`, `\\`, "|", `\|`, "`", "'", "<", "&lt;", ">", "&gt;", "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`)
	return r.Replace(s)
}

func verdictMark(v Verdict) string {
	switch v {
	case Pass:
		return "✅ pass"
	case Fail:
		return "❌ **fail**"
	case Error:
		return "⚠️ **error**"
	case Skipped:
		return "⏭️ skipped"
	case Waived:
		return "🟡 waived"
	}
	return string(v)
}

// Headline is the one-line verdict of a run: "FAIL: 3 passed, 1 failed, ...".
func Headline(r *Results) string { return string(r.Verdict()) + ": " + Counts(r) }

// Counts is the verdict counts of a run in words.
func Counts(r *Results) string {
	s := r.Summarize()
	counts := fmt.Sprintf("%d passed, %d failed, %d unproven, %d could not run, %d not evaluated, %d waived (%d checks)",
		s.Pass, s.Fail, s.Unproven, s.Error, s.Skipped, s.Waived, s.Total)
	if s.Interrupted {
		counts += "; the run was interrupted before every selected check had run"
	}
	return counts
}

// Markdown renders a short GitHub-flavoured summary that fits a CI job
// summary or a PR comment: the verdict, a table of checks, and for each
// failure the first few failing observations. It contains no links.
func Markdown(r *Results, cat Catalogue) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## bulkhead tenant isolation: %s\n\n**%s**\n\n", r.Verdict(), Counts(r))
	cl := r.Run.Cluster
	fmt.Fprintf(&b, "Run `%s` on cluster `%s` (Kubernetes %s, %s), %s, %s.\n\n",
		mdCode(r.Run.ID), mdCode(orNone(cl.Context)), orNone(cl.KubernetesVersion), orNone(strings.TrimSpace(cl.CNI+" "+cl.CNIVersion)),
		r.Run.Started.UTC().Format("2006-01-02 15:04 UTC"), r.Run.Finished.Sub(r.Run.Started).Round(time.Second))
	b.WriteString("| Check | Title | Severity | Verdict | Reason |\n|---|---|---|---|---|\n")
	for _, c := range r.Checks {
		reason := c.Reason
		if c.Verdict == Waived && c.Waiver != nil {
			reason = fmt.Sprintf("waived until %s: %s", c.Waiver.Expires.Format(time.DateOnly), c.Waiver.Justification)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", mdCell(c.ID), mdCell(c.Title), orDash(string(cat[c.ID].Severity)), verdictMark(c.Verdict), mdCell(truncate(reason, 160)))
	}
	if missing := cat.NotEvaluated(r); len(missing) > 0 {
		ids := make([]string, len(missing))
		for i, m := range missing {
			ids[i] = m.ID
		}
		fmt.Fprintf(&b, "\nNot evaluated in this run: %s.\n", mdCell(strings.Join(ids, ", ")))
	}
	var failures []CheckResult
	for _, c := range r.Checks {
		if c.Verdict == Fail || c.Verdict == Error {
			failures = append(failures, c)
		}
	}
	if len(failures) > 0 {
		b.WriteString("\n### Failed or could not run\n")
		for _, c := range failures {
			ctl := cat[c.ID]
			fmt.Fprintf(&b, "\n#### %s %s (%s, %s)\n\n%s\n", mdCell(c.ID), mdCell(c.Title), c.Verdict, orDash(string(ctl.Severity)), mdCell(c.Reason))
			var bad []Observation
			for _, o := range c.Observations {
				if !o.OK {
					bad = append(bad, o)
				}
			}
			if len(bad) > 0 {
				b.WriteString("\n")
				for i, o := range bad {
					if i == mdFailingListed {
						fmt.Fprintf(&b, "- … and %d more failing observations (see the HTML report or results.json)\n", len(bad)-mdFailingListed)
						break
					}
					fmt.Fprintf(&b, "- [%s] `%s`", o.Role, mdCode(describeObservation(o)))
					if o.Detail != "" {
						fmt.Fprintf(&b, " — %s", mdCell(truncate(o.Detail, 160)))
					}
					b.WriteString("\n")
				}
			}
			if ctl.Remediation != "" && c.Verdict == Fail {
				fmt.Fprintf(&b, "\nRemediation: %s\n", mdCell(ctl.Remediation))
			}
		}
	}
	return b.String()
}

// mdCode makes s safe inside an inline code span.
func mdCode(s string) string {
	return strings.ReplaceAll(strings.Join(strings.Fields(s), " "), "`", "'")
}
