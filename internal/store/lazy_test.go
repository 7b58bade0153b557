package store

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/freshtoken/freshtoken/internal/azuritetest"
)

// TestLazyOpensWhenReachable: a Lazy store fails calls while the table service is down and
// opens (creating the table) on the first call after it came up.
func TestLazyOpensWhenReachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	l := NewLazy(Options{
		ConnectionString: (&azuritetest.Server{}).ConnectionStringFor(net.JoinHostPort("127.0.0.1", strconv.Itoa(port))),
		Table:            "LazyTable",
		Timeout:          2 * time.Second,
		Retry:            &policy.RetryOptions{MaxRetries: -1},
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := l.List(ctx); err == nil {
		t.Fatal("List with the table service down succeeded; want an error")
	} else if !IsTransient(err) {
		t.Errorf("List error %v is not transient; want a retryable error", err)
	}

	az, err := azuritetest.Run(ctx, azuritetest.Options{Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer az.Stop()
	conns, err := l.List(ctx)
	if err != nil {
		t.Fatalf("List after the service came up: %v", err)
	}
	if len(conns) != 0 {
		t.Errorf("List = %d connections; want 0 in a new table", len(conns))
	}
	if _, err := l.Get(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(nobody) = %v; want ErrNotFound", err)
	}
}
