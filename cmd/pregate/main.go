// Command pregate is a GitOps pre-sync gate: it renders a revision as the
// GitOps engine would, lists every container image, verifies each image's
// Sigstore signatures against trust policies and says whether the revision
// may go out.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
