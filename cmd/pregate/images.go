package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newImagesCmd is a stub that keeps the tree compiling until the real
// `pregate images` command replaces this file.
func newImagesCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "images PATH",
		Short: "List every container image the revision at PATH would run (not implemented yet)",
		Args:  cobra.ExactArgs(1),
		RunE: func(*cobra.Command, []string) error {
			return errors.New("images: not implemented")
		},
	}
}
