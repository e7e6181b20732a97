package suites

import (
	"regexp"
	"strings"

	"github.com/bulkhead-k8s/bulkhead/reports"
)

// verdictLine matches the CLI's line for a finished check that did not
// pass: "[i/n] UNPROVEN ID title (took)", the verdict in capitals.
var verdictLine = regexp.MustCompile(`^\[\d+/\d+\] (` + strings.ToUpper(strings.Join([]string{
	string(reports.Fail), string(reports.Unproven), string(reports.Error), string(reports.Skipped), string(reports.Waived),
}, "|")) + `)\s`)

// withNotPassed returns a run's output followed by the lines of the checks
// that did not pass and their reasons. A failed assertion prints its
// message last, and CI logs keep the tail: the checks that made a run
// INCOMPLETE or FAIL must be there, not only in the middle of the output.
func withNotPassed(out string) string {
	lines := strings.Split(out, "\n")
	var not []string
	for i, l := range lines {
		if !verdictLine.MatchString(l) {
			continue
		}
		not = append(not, l)
		if i+1 < len(lines) && strings.HasPrefix(lines[i+1], "        ") {
			not = append(not, lines[i+1])
		}
	}
	if len(not) == 0 {
		return out
	}
	return out + "\n--- checks that did not pass:\n" + strings.Join(not, "\n")
}
