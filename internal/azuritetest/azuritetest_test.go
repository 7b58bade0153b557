package azuritetest_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/freshtoken/freshtoken/internal/azuritetest"
)

func tableNames(t *testing.T, ctx context.Context, connStr string) []string {
	t.Helper()
	svc, err := aztables.NewServiceClientFromConnectionString(connStr, nil)
	if err != nil {
		t.Fatalf("service client: %v", err)
	}
	var names []string
	pager := svc.NewListTablesPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatalf("list tables: %v", err)
		}
		for _, tp := range page.Tables {
			names = append(names, *tp.Name)
		}
	}
	return names
}

func TestStartRestartStop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv := azuritetest.Start(t)

	if !strings.Contains(srv.ConnectionString(), "TableEndpoint="+srv.TableEndpoint()+";") {
		t.Errorf("connection string does not name the table endpoint %s", srv.TableEndpoint())
	}
	svc, err := aztables.NewServiceClientFromConnectionString(srv.ConnectionString(), nil)
	if err != nil {
		t.Fatalf("service client: %v", err)
	}
	if _, err := svc.CreateTable(ctx, "kept", nil); err != nil {
		t.Fatalf("create table: %v", err)
	}
	if got := tableNames(t, ctx, srv.ConnectionString()); len(got) != 1 || got[0] != "kept" {
		t.Fatalf("tables %v; want [kept]", got)
	}

	port, before := srv.Port(), srv.Process()
	if err := srv.Restart(ctx); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if srv.Port() != port {
		t.Errorf("port after Restart %d; want %d", srv.Port(), port)
	}
	after := srv.Process()
	if after == nil || after.Pid == before.Pid {
		t.Errorf("process after Restart %v; want a new one (old pid %d)", after, before.Pid)
	}
	if err := before.Signal(syscall.Signal(0)); err == nil {
		t.Errorf("old Azurite (pid %d) still runs after Restart", before.Pid)
	}
	// In memory only: the table is gone, and the service answers again.
	if got := tableNames(t, ctx, srv.ConnectionString()); len(got) != 0 {
		t.Errorf("tables after Restart %v; want none", got)
	}

	if err := srv.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if srv.Process() != nil {
		t.Errorf("Process after Stop is not nil")
	}
	if err := after.Signal(syscall.Signal(0)); err == nil {
		t.Errorf("Azurite (pid %d) still runs after Stop", after.Pid)
	}
	if c, err := net.DialTimeout("tcp", srv.Addr(), time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after Stop", srv.Addr())
	}
	if err := srv.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestConnectionStringFor(t *testing.T) {
	srv := azuritetest.Start(t)
	got := srv.ConnectionStringFor("127.0.0.1:1234")
	want := "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" + azuritetest.AccountKey +
		";TableEndpoint=http://127.0.0.1:1234/devstoreaccount1;"
	if got != want {
		t.Errorf("got %s; want %s", got, want)
	}
}

func TestNotInstalled(t *testing.T) {
	tests := []struct {
		name    string
		files   []string // created under a temporary directory
		wantMsg string
	}{
		{"package.json without node_modules", []string{"package.json"}, "npm ci"},
		{"no package.json", nil, "package.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, f), []byte("{}"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			sub := filepath.Join(dir, "a", "b")
			if err := os.MkdirAll(sub, 0o700); err != nil {
				t.Fatal(err)
			}
			srv, err := azuritetest.Run(context.Background(), azuritetest.Options{Dir: sub})
			if err == nil {
				srv.Stop()
				t.Fatal("Run: got nil error; want ErrNotInstalled")
			}
			if !errors.Is(err, azuritetest.ErrNotInstalled) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("got %v; want ErrNotInstalled mentioning %q", err, tt.wantMsg)
			}
		})
	}
}

func TestPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	srv, err := azuritetest.Run(context.Background(), azuritetest.Options{Port: port})
	if err == nil {
		srv.Stop()
		t.Fatalf("Run on a busy port %d: got nil error; want one", port)
	}
}

// TestPersistAcrossRestart: with Persist, a row written before Restart is read back after it;
// Stop still removes the data directory.
func TestPersistAcrossRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := azuritetest.Run(ctx, azuritetest.Options{Persist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	svc, err := aztables.NewServiceClientFromConnectionString(srv.ConnectionString(), nil)
	if err != nil {
		t.Fatalf("service client: %v", err)
	}
	if _, err := svc.CreateTable(ctx, "kept", nil); err != nil {
		t.Fatalf("create table: %v", err)
	}
	row := []byte(`{"PartitionKey":"p","RowKey":"r","Value":"written before the restart"}`)
	if _, err := svc.NewClient("kept").AddEntity(ctx, row, nil); err != nil {
		t.Fatalf("add entity: %v", err)
	}
	before := srv.Process()
	if err := srv.Restart(ctx); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if after := srv.Process(); after == nil || after.Pid == before.Pid {
		t.Fatalf("process after Restart %v; want a new one (old pid %d)", after, before.Pid)
	}
	resp, err := svc.NewClient("kept").GetEntity(ctx, "p", "r", nil)
	if err != nil {
		t.Fatalf("get the row after Restart: %v", err)
	}
	if got := string(resp.Value); !strings.Contains(got, "written before the restart") {
		t.Errorf("row after Restart = %s; want the value written before", got)
	}
	if err := srv.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}
