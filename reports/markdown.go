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

// describeObservation names one observation compactly, with its round
// and, when unproven or not applicable, why:
// "ns-a/probe-0 -> ns-b/probe-1 tcp/pod-ip: timeout (want blocked, round 2) [unproven: ...]".
func describeObservation(o Observation) string {
	from := actorKey(o.Actor)
	if from == "" {
		from = o.Actor.Namespace
	}
	to := targetKey(o.Target)
	if to == "" {
		to = o.Target.Namespace
	}
	s := fmt.Sprintf("%s -> %s %s: %s (want %s", from, to, o.Method, o.Observed, o.Expected)
	if o.Round > 0 {
		s += fmt.Sprintf(", round %d", o.Round)
	}
	s += ")"
	if o.Why != "" && (o.Status == StatusUnproven || o.Status == StatusNotApplicable) {
		s += " [" + string(o.Status) + ": " + o.Why + "]"
	}
	return s
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
	case Unproven:
		return "❔ **unproven**"
	case Skipped:
		return "⏭️ not evaluated"
	case Waived:
		return "🟡 waived"
	}
	return string(v)
}

// runMark is the run verdict's sign in Markdown.
func runMark(v RunVerdict) string {
	switch v {
	case RunPass:
		return "✅"
	case RunFail:
		return "❌"
	case RunIncomplete:
		return "❔"
	}
	return "⚠️"
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
// summary or a PR comment: the run verdict and what it means, a table of
// checks, for each failure the first few failing observations, and for
// each unproven check the first few paths that were not proven and why.
// It contains no links.
func Markdown(r *Results, cat Catalogue) string {
	var b strings.Builder
	s := r.Summarize()
	v := s.Verdict()
	fmt.Fprintf(&b, "## bulkhead tenant isolation: %s\n\n**%s**\n\n> %s **%s**: %s.\n\n", v, Counts(r), runMark(v), v, s.Meaning())
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
	var failures, unproven []CheckResult
	for _, c := range r.Checks {
		switch c.Verdict {
		case Fail, Error:
			failures = append(failures, c)
		case Unproven:
			unproven = append(unproven, c)
		}
	}
	if len(failures) > 0 {
		b.WriteString("\n### Failed or could not run\n")
		for _, c := range failures {
			ctl := cat[c.ID]
			mdCheckHeading(&b, c, ctl)
			var bad []Observation
			for _, o := range c.Observations {
				if o.Failed() {
					bad = append(bad, o)
				}
			}
			mdObservations(&b, bad, mdFailingListed, "failing observations")
			if ctl.Remediation != "" && c.Verdict == Fail {
				fmt.Fprintf(&b, "\nRemediation: %s\n", mdCell(ctl.Remediation))
			}
		}
	}
	if len(unproven) > 0 {
		b.WriteString("\n### Not proven\n\nNothing leaked in these checks, but what they tested was not all shown to work where it should: a blocked result there proves nothing yet.\n")
		for _, c := range unproven {
			mdCheckHeading(&b, c, cat[c.ID])
			var paths, controls []Observation
			for _, o := range c.Observations {
				switch {
				case o.Role == RoleControl && o.Failed():
					controls = append(controls, o)
				case o.Role == RoleTest && o.Status == StatusUnproven:
					paths = append(paths, o)
				}
			}
			mdObservations(&b, paths, mdFailingListed, "unproven paths")
			if len(controls) > 0 {
				fmt.Fprintf(&b, "\nFailed positive controls (%d):\n", len(controls))
				mdObservations(&b, controls, mdControlsListed, "failed positive controls")
			}
		}
	}
	return b.String()
}

// mdReasonChars bounds a reason under a check's heading: the
// observations listed below it say the rest.
const mdReasonChars = 400

// mdControlsListed bounds how many failed positive controls an unproven
// check lists.
const mdControlsListed = 3

func mdCheckHeading(b *strings.Builder, c CheckResult, ctl Control) {
	fmt.Fprintf(b, "\n#### %s %s (%s, %s)\n\n%s\n", mdCell(c.ID), mdCell(c.Title), c.Verdict.Word(), orDash(string(ctl.Severity)), mdCell(truncate(c.Reason, mdReasonChars)))
}

// mdObservations lists the first max of obs, then says how many more
// (what they are) the HTML report and results.json have.
func mdObservations(b *strings.Builder, obs []Observation, max int, what string) {
	if len(obs) == 0 {
		return
	}
	b.WriteString("\n")
	for i, o := range obs {
		if i == max {
			fmt.Fprintf(b, "- … and %d more %s (see the HTML report or results.json)\n", len(obs)-max, what)
			break
		}
		fmt.Fprintf(b, "- [%s] `%s`", o.Role, mdCode(describeObservation(o)))
		if o.Detail != "" {
			fmt.Fprintf(b, " — %s", mdCell(truncate(o.Detail, 160)))
		}
		b.WriteString("\n")
	}
}

// mdCode makes s safe inside an inline code span.
func mdCode(s string) string {
	return strings.ReplaceAll(strings.Join(strings.Fields(s), " "), "`", "'")
}
