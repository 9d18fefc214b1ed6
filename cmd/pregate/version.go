package main

import (
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/pregate/pregate/gate/report"
)

// Stamped by the Makefile: -ldflags "-X main.version=… -X main.commit=…".
var (
	version string
	commit  string
)

type versionInfo struct {
	Version, Commit, Go string
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
	var format report.Format
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version pregate was built with",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := buildVersion()
			return report.Version(cmd.OutOrStdout(), format, v.Version, v.Commit, v.Go)
		},
	}
	addOutputFlag(cmd, &format)
	return cmd
}
