package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/pregate/pregate/gate/report"
)

// Exit codes, the contract with CI and the Argo CD hook.
const (
	exitOK        = 0 // the revision may go out
	exitBlocked   = 1 // a policy blocks the revision
	exitUndecided = 2 // pregate could not decide: bad usage, or a render, fetch or registry error
)

// exitError ends a command with a given exit code. A command returns one to
// say "blocked" (exitBlocked) after printing its report, with a nil err; any
// other error a command returns means "could not decide" (exitUndecided).
type exitError struct {
	code int
	err  error // printed to stderr when not nil
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit code %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// NewRootCmd returns the pregate command tree.
func NewRootCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pregate",
		Short: "Verify the images of a GitOps revision before it is applied",
		Long: `pregate renders a GitOps revision as Flux or Argo CD would, lists every
container image it would run, verifies each image's Sigstore signatures and
attestations against trust policies, and says whether the revision may go out.

Exit codes: 0 allowed, 1 blocked by a policy, 2 could not decide.`,
		SilenceUsage:  true,
		SilenceErrors: true, // run prints the error once, then maps it to an exit code
	}
	// One constructor per command, each in its own file.
	cmd.AddCommand(
		newCheckCmd(),
		newControllerCmd(),
		newExplainCmd(),
		newImagesCmd(),
		newPolicyCmd(),
		newVersionCmd(),
	)
	return cmd
}

// run executes the command line args and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := NewRootCmd() //nolint:contextcheck // commands read the context from cmd.Context(), set by ExecuteContext below
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	return exitCode(cmd.ExecuteContext(ctx), stderr)
}

// exitCode prints err, if there is one to print, and maps it to the process
// exit code.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	code := exitUndecided
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		if ee.err == nil {
			return code // the command has reported the outcome
		}
	}
	fmt.Fprintf(stderr, "pregate: %v\n", err)
	return code
}

// formatFlag is the value of -o/--output: one of the formats a command
// reports in.
type formatFlag struct {
	f       *report.Format
	allowed []report.Format
}

func (v formatFlag) String() string { return string(*v.f) }

// Set validates the flag's value, so a bad -o fails while the flags are parsed.
func (v formatFlag) Set(s string) error {
	f, err := report.ParseFormat(s, v.allowed)
	if err != nil {
		return err
	}
	*v.f = f
	return nil
}

func (v formatFlag) Type() string { return "format" }

// addOutputFlag registers -o/--output on cmd, defaulting to text.
func addOutputFlag(cmd *cobra.Command, f *report.Format, allowed ...report.Format) {
	if len(allowed) == 0 {
		allowed = []report.Format{report.Text, report.JSON}
	}
	*f = report.Text
	cmd.Flags().VarP(formatFlag{f, allowed}, "output", "o", "output format: "+report.Names(allowed))
}

// verdictExit maps a decision to the command's exit: nil when allowed,
// exitUndecided when pregate could not decide (gaps hide images, or every
// denial rests on a failed lookup), exitBlocked otherwise.
func verdictExit(allowed, undecided bool) error {
	switch {
	case allowed:
		return nil
	case undecided:
		return &exitError{code: exitUndecided}
	default:
		return &exitError{code: exitBlocked}
	}
}
