package reports

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// JUnitFile is the JUnit report's file name inside a report directory.
const JUnitFile = "junit.xml"

// JUnit XML as GitLab, Jenkins and the GitHub test-report actions read it:
// a <testsuites> root, one <testsuite> per area, one <testcase> per check.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitCase struct {
	Name       string          `xml:"name,attr"`
	Classname  string          `xml:"classname,attr"`
	Time       string          `xml:"time,attr"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Failure    *junitResult    `xml:"failure,omitempty"`
	Error      *junitResult    `xml:"error,omitempty"`
	Skipped    *junitResult    `xml:"skipped,omitempty"`
	SystemOut  string          `xml:"system-out,omitempty"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitResult struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Data    string `xml:",chardata"`
}

// JUnit renders results as JUnit XML.
func JUnit(r *Results) ([]byte, error) {
	root := junitSuites{Name: "bulkhead"}
	byArea := map[string][]CheckResult{}
	var areas []string
	for _, c := range r.Checks {
		if _, ok := byArea[c.Area]; !ok {
			areas = append(areas, c.Area)
		}
		byArea[c.Area] = append(byArea[c.Area], c)
	}
	sort.Strings(areas)
	runProps := []junitProperty{
		{"bulkhead.run", r.Run.ID},
		{"bulkhead.version", r.Run.Bulkhead.Version},
		{"cluster.context", r.Run.Cluster.Context},
		{"cluster.kubernetesVersion", r.Run.Cluster.KubernetesVersion},
		{"cluster.cni", strings.TrimSpace(r.Run.Cluster.CNI + " " + r.Run.Cluster.CNIVersion)},
	}
	var total float64
	for _, area := range areas {
		suite := junitSuite{Name: "bulkhead/" + area, Properties: runProps}
		var suiteTime float64
		for _, c := range byArea[area] {
			secs := c.Finished.Sub(c.Started).Seconds()
			suiteTime += secs
			if suite.Timestamp == "" && !c.Started.IsZero() {
				suite.Timestamp = c.Started.Format("2006-01-02T15:04:05Z07:00")
			}
			tc := junitCase{
				Name:       c.ID + " " + c.Title,
				Classname:  "bulkhead." + area,
				Time:       fmt.Sprintf("%.3f", secs),
				Properties: []junitProperty{{"check.id", c.ID}, {"verdict", string(c.Verdict)}},
				SystemOut:  EvidenceText(c),
			}
			switch c.Verdict {
			case Fail:
				tc.Failure = &junitResult{Message: c.Reason, Type: "isolation", Data: c.Reason}
				suite.Failures++
			case Error:
				tc.Error = &junitResult{Message: c.Reason, Type: "could-not-run", Data: c.Reason}
				suite.Errors++
			case Skipped:
				tc.Skipped = &junitResult{Message: c.Reason}
				suite.Skipped++
			}
			suite.Tests++
			suite.Cases = append(suite.Cases, tc)
		}
		suite.Time = fmt.Sprintf("%.3f", suiteTime)
		total += suiteTime
		root.Tests += suite.Tests
		root.Failures += suite.Failures
		root.Errors += suite.Errors
		root.Skipped += suite.Skipped
		root.Suites = append(root.Suites, suite)
	}
	root.Time = fmt.Sprintf("%.3f", total)
	out, err := xml.MarshalIndent(root, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode JUnit: %w", err)
	}
	return append([]byte(xml.Header), append(out, '\n')...), nil
}

// WriteJUnit writes dir/junit.xml.
func WriteJUnit(dir string, r *Results) (string, error) {
	data, err := JUnit(r)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, JUnitFile)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return path, nil
}

// EvidenceText renders a check's evidence as plain text: verdict, notes,
// truth tables and every observation.
func EvidenceText(c CheckResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %s\n", c.ID, c.Title, strings.ToUpper(string(c.Verdict)))
	if c.Reason != "" {
		fmt.Fprintf(&b, "reason: %s\n", c.Reason)
	}
	fmt.Fprintf(&b, "proves: %s\n", c.Proves)
	fmt.Fprintf(&b, "ran: %s .. %s\n", c.Started.Format("2006-01-02T15:04:05.000Z07:00"), c.Finished.Format("15:04:05.000"))
	for _, n := range c.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	if tables := TruthTables(c.Observations); len(tables) > 0 {
		fmt.Fprintf(&b, "\ntruth tables (%s)\n", TruthTableLegend)
		for _, t := range tables {
			b.WriteString("\n" + t.Text())
		}
	}
	fmt.Fprintf(&b, "\nobservations (%d):\n", len(c.Observations))
	for _, o := range c.Observations {
		mark := "ok  "
		if !o.OK {
			mark = "FAIL"
		}
		from := actorKey(o.Actor)
		if o.Actor.Identity != "" && o.Actor.Pod != "" {
			from += " as " + o.Actor.Identity
		}
		fmt.Fprintf(&b, "%s [%s] %s -> %s (%s) %s: expected %s, observed %s", mark, o.Role, from, targetKey(o.Target), o.Target.Address, o.Method, o.Expected, o.Observed)
		if o.Detail != "" {
			fmt.Fprintf(&b, " (%s)", o.Detail)
		}
		fmt.Fprintf(&b, " at %s", o.At.Format("15:04:05.000"))
		if o.Attempts > 1 {
			fmt.Fprintf(&b, " after %d attempts", o.Attempts)
		}
		b.WriteString("\n")
	}
	return b.String()
}
