package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/pregate/pregate/gate/pipeline"
	"github.com/pregate/pregate/gate/report"
	"github.com/pregate/pregate/verify"
)

// reportFile is one --report FORMAT=FILE.
type reportFile struct {
	format report.Format
	path   string
}

// parseReports reads the --report values.
func parseReports(specs []string) ([]reportFile, error) {
	var out []reportFile
	for _, s := range specs {
		name, path, ok := strings.Cut(s, "=")
		if !ok || path == "" {
			return nil, fmt.Errorf("--report %q: want FORMAT=FILE", s)
		}
		f, err := report.ParseFormat(name, report.CheckFormats)
		if err != nil {
			return nil, fmt.Errorf("--report %q: %w", s, err)
		}
		if slices.ContainsFunc(out, func(r reportFile) bool { return r.path == path }) {
			return nil, fmt.Errorf("--report %q: %s is written twice", s, path)
		}
		out = append(out, reportFile{format: f, path: path})
	}
	return out, nil
}

// writeReports prints the check's report in format, writes each --report
// file, and, when a GitHub report was asked for and $GITHUB_STEP_SUMMARY
// names a file, appends the step summary to it.
func writeReports(stdout io.Writer, format report.Format, files []reportFile, res *pipeline.Result) error {
	tool := buildVersion().Version
	github := format == report.GitHub
	for _, rf := range files {
		github = github || rf.format == report.GitHub
		if err := writeReportFile(rf, res, tool); err != nil {
			return err
		}
	}
	if err := report.Check(stdout, format, res, tool); err != nil {
		return err
	}
	if summary := os.Getenv("GITHUB_STEP_SUMMARY"); github && summary != "" {
		f, err := os.OpenFile(filepath.Clean(summary), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600) //nolint:gosec // the file GitHub Actions names for the step summary
		if err != nil {
			return fmt.Errorf("writing the step summary: %w", err)
		}
		defer f.Close()
		if err := report.GitHubSummary(f, res); err != nil {
			return fmt.Errorf("writing the step summary to %s: %w", summary, err)
		}
		return f.Close()
	}
	return nil
}

// writeReportFile writes one --report file whole: to a temporary file
// beside it, then renamed, so a reader never sees half a report.
func writeReportFile(rf reportFile, res *pipeline.Result, tool string) error {
	dir := filepath.Dir(rf.path)
	tmp, err := os.CreateTemp(dir, ".pregate-report-*")
	if err != nil {
		return fmt.Errorf("--report %s=%s: %w", rf.format, rf.path, err)
	}
	defer os.Remove(tmp.Name())
	if err := report.Check(tmp, rf.format, res, tool); err != nil {
		tmp.Close()
		return fmt.Errorf("--report %s=%s: %w", rf.format, rf.path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("--report %s=%s: %w", rf.format, rf.path, err)
	}
	if err := os.Rename(tmp.Name(), rf.path); err != nil {
		return fmt.Errorf("--report %s=%s: %w", rf.format, rf.path, err)
	}
	return nil
}

// progressOn returns the progress line check shows on w while images are
// verified, or nil when w is not a terminal: a log or a pipe never gets
// it.
func progressOn(w io.Writer) func(pipeline.Progress) {
	f, ok := w.(interface{ Fd() uintptr })
	if !ok || !term.IsTerminal(int(f.Fd())) { //nolint:gosec // a file descriptor fits an int
		return nil
	}
	return func(p pipeline.Progress) { _, _ = io.WriteString(w, progressLine(p)) }
}

// progressLine rewrites the terminal's current line with p; the zero
// Progress clears it.
func progressLine(p pipeline.Progress) string {
	if p.Total == 0 {
		return "\r\033[K"
	}
	return fmt.Sprintf("\r\033[Kverifying %d images: %d resolved, %d verified", p.Total, p.Resolved, p.Verified)
}

// cacheFlags are the flags of the verdict cache kept between runs.
type cacheFlags struct {
	dir string
	off bool
}

func (f *cacheFlags) bind(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.dir, "cache-dir", defaultCacheDir(), "where verdicts are kept between runs, by digest, policy and trust material, for "+verify.DefaultCacheTTL.String()+" (as the controller keeps them); safe to share between concurrent runs")
	fs.BoolVar(&f.off, "no-cache", false, "neither read nor write the verdict cache")
}

// defaultCacheDir is pregate's directory in the user's cache directory
// ($XDG_CACHE_HOME, ~/.cache), or "" when there is none.
func defaultCacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "pregate", "verdicts")
}

// cache returns the verdict cache the flags ask for, nil for none;
// warnings about damaged entries go to stderr.
func (f *cacheFlags) cache(stderr io.Writer) (*verify.Cache, error) {
	if f.off || f.dir == "" {
		return nil, nil
	}
	warn := func(err error) { fmt.Fprintf(stderr, "pregate: warning: verdict cache: %v\n", err) }
	c, err := verify.NewCache(verify.DefaultCacheTTL, verify.WithCacheDir(f.dir), verify.WithCacheWarnings(warn))
	if err != nil {
		return nil, fmt.Errorf("--cache-dir: %w", err)
	}
	return c, nil
}
