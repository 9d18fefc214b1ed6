package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Stamped by the Makefile: -ldflags "-X main.version=… -X main.commit=…".
var (
	version string
	commit  string
)

type versionInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Go      string `json:"go"`
}

// buildVersion reports the stamped version and commit, falling back to what
// the go command recorded (a `go install …@v1.2.3` has no -ldflags).
func buildVersion() versionInfo {
	v := versionInfo{Version: version, Commit: commit, Go: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v.Version == "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && v.Commit == "" {
				v.Commit = s.Value
			}
		}
	}
	if v.Version == "" {
		v.Version = "dev"
	}
	if v.Commit == "" {
		v.Commit = "unknown"
	}
	return v
}

func newVersionCmd() *cobra.Command {
	var format outputFormat
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version pregate was built with",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := buildVersion()
			out := cmd.OutOrStdout()
			if format == outputJSON {
				return writeJSON(out, v)
			}
			_, err := fmt.Fprintf(out, "version: %s\ncommit:  %s\ngo:      %s\n", v.Version, v.Commit, v.Go)
			return err
		},
	}
	addOutputFlag(cmd, &format)
	return cmd
}
