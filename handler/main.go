// Command freshtoken is the Azure Functions custom handler (and standalone server) that keeps
// OAuth2 token pairs fresh in Azure Table Storage. With a subcommand it does one job and exits:
// refresh, status, import, rekey, reader-url, version, help.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitStatus(err, os.Stderr))
}
