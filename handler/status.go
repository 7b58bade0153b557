package main

import (
	"context"
	"errors"
)

// statusCommand is `freshtoken status [--json]`.
func statusCommand(ctx context.Context, inv invocation, asJSON bool) error {
	return errors.New("status: not built yet")
}
