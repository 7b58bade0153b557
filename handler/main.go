// Command freshtoken is the Azure Functions custom handler (and standalone server) that keeps
// OAuth2 token pairs fresh in Azure Table Storage.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		var ee *exitError
		if !errors.As(err, &ee) {
			ee = &exitError{Code: exitFailed, Err: err}
		}
		if ee.Err != nil {
			fmt.Fprintln(os.Stderr, "freshtoken:", ee.Err)
		}
		os.Exit(ee.Code)
	}
}
