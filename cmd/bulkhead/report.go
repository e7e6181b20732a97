package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/bulkhead-k8s/bulkhead/internal/target"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// reportOptions are the report flags shared by `run` and `report`.
type reportOptions struct {
	dir        string
	formats    []string
	waiverFile string
	baseline   string
	failOn     string

	waivers *reports.Waivers
	base    *reports.Results
	now     func() time.Time
}

// addFlags adds the report flags; --report-dir is one of the flags the
// suites share (target.Config.RegisterFlags).
func (r *reportOptions) addFlags(f *pflag.FlagSet) {
	f.StringSliceVar(&r.formats, "format", nil, "report formats (default: all): "+formatList())
	f.StringVar(&r.waiverFile, "waivers", "", "waiver file: failures it covers (until their expiry) are reported as waived")
	f.StringVar(&r.baseline, "baseline", "", "results.json of an earlier run to compare with")
	f.StringVar(&r.failOn, "fail-on", "any", "judge every failure (any) or forgive failures the --baseline already had, unchanged (new); not-evaluated or unproven checks always make the run INCOMPLETE")
}

func formatList() string {
	s := ""
	for i, f := range reports.Formats {
		if i > 0 {
			s += ", "
		}
		s += f
	}
	return s
}

// load reads the waiver and baseline files and checks the flags, so bad
// input stops a run before it touches a cluster.
func (r *reportOptions) load() error {
	if r.now == nil {
		r.now = time.Now
	}
	switch r.failOn {
	case "any":
	case "new":
		if r.baseline == "" {
			return errors.New("--fail-on new needs --baseline")
		}
	default:
		return fmt.Errorf("--fail-on %q: want any or new", r.failOn)
	}
	for _, f := range r.formats {
		if !reports.IsFormat(f) {
			return fmt.Errorf("--format %q: want one of %s", f, formatList())
		}
	}
	if r.waiverFile != "" {
		w, err := reports.LoadWaivers(r.waiverFile)
		if err != nil {
			return err
		}
		r.waivers = w
	}
	if r.baseline != "" {
		b, err := reports.ReadJSON(r.baseline)
		if err != nil {
			return fmt.Errorf("--baseline: %w", err)
		}
		r.base = b
	}
	return nil
}

// finish applies waivers, compares with the baseline, writes the reports
// and turns the outcome into the exit status.
func (r *reportOptions) finish(res *reports.Results, prog *progress, stdout io.Writer) error {
	cat, err := reports.LoadCatalogue()
	if err != nil {
		return cannot(err)
	}
	if r.waivers != nil {
		if res, err = reports.ApplyWaivers(res, r.waivers, cat, r.now()); err != nil {
			return cannot(err)
		}
	}
	var diff *reports.Diff
	if r.base != nil {
		d := reports.CompareBaseline(r.base, res)
		diff = &d
	}
	root := r.dir
	if root == "" {
		t := target.Config{}
		root = t.ReportRoot()
	}
	dir := filepath.Join(root, res.Run.ID)
	written, err := reports.Render(res, dir, reports.RenderOptions{Formats: r.formats, Catalogue: cat, Baseline: diff})
	if err != nil {
		return cannot(fmt.Errorf("write reports: %w", err))
	}
	fmt.Fprintf(stdout, "%s\n", reports.Headline(res))
	if diff != nil {
		fmt.Fprintf(stdout, "baseline %s: %d new failure(s), %d fixed\n", r.base.Run.ID, len(diff.NewFailures)+len(diff.Regressed), len(diff.Fixed))
	}
	fmt.Fprintf(stdout, "reports: %s (%d files)\n", dir, len(written))
	verdict, why := reports.Gate(res, diff, r.failOn == "new")
	if verdict == reports.RunPass {
		return nil
	}
	return &exitError{code: verdict.ExitCode(), err: fmt.Errorf("%s: %s", verdict, why)}
}

func newReportCommand() *cobra.Command {
	var r reportOptions
	cmd := &cobra.Command{
		Use:   "report RESULTS.json",
		Short: "Render reports from a results file, without the cluster",
		Long: `Render reports from a results.json written by an earlier run, without the
cluster: re-render for a new format, apply waivers, or compare with a baseline.
Reports go to --report-dir/<run-id>/ (default _reports).`,
		Example: `  bulkhead report _reports/k3x9q/results.json --format html,markdown
  bulkhead report new/results.json --baseline old/results.json --fail-on new`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := r.load(); err != nil {
				return cannot(err)
			}
			res, err := reports.ReadJSON(args[0])
			if err != nil {
				return cannot(err)
			}
			return r.finish(res, newProgress(cmd.ErrOrStderr()), cmd.OutOrStdout())
		},
	}
	t := target.FromEnv(os.Getenv)
	dir := flag.NewFlagSet("report", flag.ContinueOnError)
	t.RegisterReportDir(dir)
	cmd.Flags().AddGoFlagSet(dir)
	r.addFlags(cmd.Flags())
	cmd.PreRun = func(*cobra.Command, []string) { r.dir = t.ReportDir }
	return cmd
}
