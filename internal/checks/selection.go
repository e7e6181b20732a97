package checks

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/bulkhead-k8s/bulkhead/reports"
)

// Profiles select checks by cost.
const (
	// ProfileQuick leaves out checks marked Slow.
	ProfileQuick = "quick"
	// ProfileFull runs every check (the default).
	ProfileFull = "full"
)

// Labels of a check, as e2e-framework labels its feature and as the CLI
// filters: area, check ID, profile, and the catalogue's framework mappings
// (cis, mtb, nist80053).
func Labels(c Check, entry reports.Control) map[string][]string {
	l := map[string][]string{
		"area":    {string(c.Area)},
		"check":   {c.ID},
		"profile": {ProfileFull},
	}
	if !c.Slow {
		l["profile"] = append(l["profile"], ProfileQuick)
	}
	m := entry.Mappings
	if len(m.MTB) > 0 {
		l["mtb"] = slices.Clone(m.MTB)
	}
	if len(m.NIST80053) > 0 {
		l["nist80053"] = slices.Clone(m.NIST80053)
	}
	for _, ids := range m.CIS {
		for _, id := range ids {
			if !slices.Contains(l["cis"], id) {
				l["cis"] = append(l["cis"], id)
			}
		}
	}
	return l
}

// Selection narrows a run.
type Selection struct {
	Areas   []string
	Profile string
	// Labels: a check runs only if, for every key, one of its values
	// matches. SkipLabels: a check is left out if any key/value matches.
	Labels, SkipLabels map[string][]string
}

// ParseLabels reads "key=value,key=value" (e2e-framework's --labels form).
// A key given twice accepts either value.
func ParseLabels(s string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok || strings.TrimSpace(k) == "" || strings.TrimSpace(v) == "" {
			return nil, fmt.Errorf("label filter %q: want key=value", part)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		out[k] = append(out[k], v)
	}
	return out, nil
}

// Select returns the checks sel admits, in order. Unknown areas or
// profiles are errors, so a typo never selects nothing silently.
func Select(cs []Check, cat reports.Catalogue, sel Selection) ([]Check, error) {
	known := map[string]bool{}
	for _, c := range cs {
		known[string(c.Area)] = true
	}
	for _, a := range sel.Areas {
		if !known[a] {
			return nil, fmt.Errorf("unknown area %q (areas: %s)", a, strings.Join(sortedKeys(known), ", "))
		}
	}
	switch sel.Profile {
	case "", ProfileFull, ProfileQuick:
	default:
		return nil, fmt.Errorf("unknown profile %q (want %s or %s)", sel.Profile, ProfileQuick, ProfileFull)
	}
	var out []Check
	for _, c := range cs {
		if len(sel.Areas) > 0 && !slices.Contains(sel.Areas, string(c.Area)) {
			continue
		}
		if sel.Profile == ProfileQuick && c.Slow {
			continue
		}
		l := Labels(c, cat[c.ID])
		if !matchAll(l, sel.Labels) || matchAny(l, sel.SkipLabels) {
			continue
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the selection matches no check")
	}
	return out, nil
}

func matchAll(have, want map[string][]string) bool {
	for k, vs := range want {
		if !slices.ContainsFunc(vs, func(v string) bool { return slices.Contains(have[k], v) }) {
			return false
		}
	}
	return true
}

func matchAny(have, skip map[string][]string) bool {
	for k, vs := range skip {
		if slices.ContainsFunc(vs, func(v string) bool { return slices.Contains(have[k], v) }) {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
