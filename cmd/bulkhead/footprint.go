package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/session"
	"github.com/bulkhead-k8s/bulkhead/internal/target"
)

// The footprint text of `bulkhead run --help` and README, made from the
// declarations (session.Footprint, each check's Creates), so neither can
// drift from what the code says it creates.

// footprintSections are the places, in the order the text lists them.
var footprintSections = []struct {
	where checks.Where
	title string
}{
	{checks.TenantNamespaces, "In tenant namespaces (with --config: your namespaces)"},
	{checks.OwnNamespaces, "In bulkhead's own namespaces (bh-<run>-*, deleted with everything in them)"},
	{checks.ClusterScoped, "Cluster-scoped"},
	{checks.OutsideCluster, "Outside the cluster"},
}

// footprintText lists, per place, what the run's set-up and each check
// create, for how long, and what turns it off.
func footprintText(cs []checks.Check) string {
	var b strings.Builder
	b.WriteString("What bulkhead creates, where, and for how long (`bulkhead run --dry-run` shows it\nfor your flags, config and cluster, creating nothing). Every check can be left\nout with --skip-labels check=<ID> (or --areas); that is the \"off\" of each line.\n")
	for _, sec := range footprintSections {
		// Checks sharing a footprint (one API sweep serves seven) are
		// listed together.
		var texts []string
		who := map[string][]string{}
		add := func(id string, f checks.Footprint) {
			if f.Where != sec.where {
				return
			}
			t := f.Describe()
			if _, ok := who[t]; !ok {
				texts = append(texts, t)
			}
			who[t] = append(who[t], id)
		}
		for _, f := range session.Footprint {
			add("run set-up", f)
		}
		for _, c := range cs {
			for _, f := range c.Creates {
				add(c.ID, f)
			}
		}
		if len(texts) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n%s:\n", sec.title)
		for _, t := range texts {
			b.WriteString(wrap(strings.Join(who[t], ", "), t))
		}
	}
	var none []string
	for _, c := range cs {
		if !creates(c) {
			none = append(none, c.ID)
		}
	}
	if len(none) > 0 {
		fmt.Fprintf(&b, "\nCreate nothing (reads, server-side dry-run requests, probes from the run's\nprobe pods):\n%s", wrap("", strings.Join(none, ", ")))
	}
	return b.String()
}

func creates(c checks.Check) bool {
	for _, f := range c.Creates {
		if f.Where != checks.Nowhere {
			return true
		}
	}
	return false
}

// wrap formats one entry: a 12-column label, then text wrapped at 80; a
// longer label gets a line of its own.
func wrap(label, text string) string {
	const width, indent = 80, 14
	var b strings.Builder
	line := fmt.Sprintf("  %-11s ", label)
	if len(label) > 11 {
		b.WriteString("  " + label + ":\n")
		line = strings.Repeat(" ", indent)
	}
	for _, w := range strings.Fields(text) {
		if len(line)+len(w)+1 > width && len(strings.TrimSpace(line)) > 0 && len(line) > indent {
			b.WriteString(strings.TrimRight(line, " ") + "\n")
			line = strings.Repeat(" ", indent)
		}
		line += w + " "
	}
	b.WriteString(strings.TrimRight(line, " ") + "\n")
	return b.String()
}

// printPlan prints what a run would create for the selected checks: per
// namespace what the set-up creates and what each check would, then the
// cluster-scoped and outside-the-cluster footprints.
func printPlan(w io.Writer, p *session.Plan, selected []checks.Check, tgt string, proof target.Proof) {
	fmt.Fprintf(w, "plan of run %s against %s (nothing was created)\n", p.RunID, tgt)
	if proof.Disposable {
		fmt.Fprintf(w, "cluster: disposable (%s)\n", proof.Reason)
	} else {
		fmt.Fprintf(w, "cluster: not disposable: %s; bulkhead asks before creating anything (--yes in scripts)\n", proof.Reason)
	}
	ids := make([]string, len(selected))
	for i, c := range selected {
		ids[i] = c.ID
	}
	fmt.Fprintf(w, "checks (%d): %s\n", len(selected), strings.Join(ids, ", "))

	for _, ns := range p.Namespaces {
		owner := "tenant " + ns.Tenant
		if ns.Own {
			owner = "created by bulkhead for this run, deleted with everything in it"
			if ns.UnderTest {
				owner = "reference tenant " + ns.Tenant + ", " + owner
			}
		}
		fmt.Fprintf(w, "\nnamespace %s (%s):\n", ns.Name, owner)
		if len(ns.Objects) > 0 {
			fmt.Fprint(w, wrap("run set-up", strings.Join(ns.Objects, ", ")+" ("+checks.WholeRun+")"))
		}
		for _, c := range selected {
			for _, f := range c.Creates {
				if appliesTo(f, ns, proof.Disposable) {
					fmt.Fprint(w, wrap(c.ID, withOff(f, c.ID).Describe()))
				}
			}
		}
	}
	own := footprintsAt(selected, checks.OwnNamespaces, proof.Disposable)
	if len(own) > 0 {
		fmt.Fprintf(w, "\nalso in bulkhead's own namespaces:\n%s", strings.Join(own, ""))
	}
	cluster := footprintsAt(selected, checks.ClusterScoped, proof.Disposable)
	fmt.Fprintf(w, "\ncluster-scoped:\n")
	fmt.Fprint(w, wrap("run set-up", strings.Join(p.ClusterScoped, ", ")+" ("+checks.WholeRun+")"))
	fmt.Fprint(w, strings.Join(cluster, ""))
	if outside := footprintsAt(selected, checks.OutsideCluster, proof.Disposable); len(outside) > 0 {
		fmt.Fprintf(w, "\noutside the cluster:\n%s", strings.Join(outside, ""))
	}
}

// appliesTo says whether footprint f of a check lands in namespace ns.
func appliesTo(f checks.Footprint, ns session.PlannedNamespace, disposable bool) bool {
	if f.DisposableOnly && !disposable {
		return false
	}
	switch f.Where {
	case checks.TenantNamespaces:
		if !ns.UnderTest {
			return false
		}
		switch f.Scope {
		case checks.WithIdentities:
			return ns.Identities
		case checks.FirstNamespace:
			return ns.Identities && ns.First
		}
		return true
	}
	return false
}

func footprintsAt(selected []checks.Check, where checks.Where, disposable bool) []string {
	var out []string
	for _, c := range selected {
		for _, f := range c.Creates {
			if f.Where == where && (!f.DisposableOnly || disposable) {
				out = append(out, wrap(c.ID, withOff(f, c.ID).Describe()))
			}
		}
	}
	sort.Strings(out)
	return out
}

// withOff is f with the flag that leaves check id out added to what turns
// it off.
func withOff(f checks.Footprint, id string) checks.Footprint {
	if f.OffWith == "" {
		f.OffWith = checks.SkipFlag(id)
	} else {
		f.OffWith += ", or " + checks.SkipFlag(id)
	}
	return f
}
