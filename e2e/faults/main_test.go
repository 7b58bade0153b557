package faults

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/e2e/funchost"
	"github.com/freshtoken/freshtoken/internal/azuritetest"
)

// harness is what every run shares: the handler built once from this checkout (with -race),
// the app's host.json and function.json files, and one Azurite keeping its data on disk. It is
// set up by the first test that needs it, so that the evaluator's unit tests run without it.
type harness struct {
	root string
	bin  string
	app  *funchost.App
	az   *azuritetest.Server
	azMu sync.Mutex // serialises Azurite restarts
}

var (
	shared    *harness
	sharedErr error
	setupOnce sync.Once
	tempDir   string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil && shared.az != nil {
		shared.az.Stop()
	}
	if tempDir != "" {
		os.RemoveAll(tempDir)
	}
	os.Exit(code)
}

// getHarness sets the harness up once, or fails the test.
func getHarness(t *testing.T) *harness {
	t.Helper()
	setupOnce.Do(func() { shared, sharedErr = setup() })
	if sharedErr != nil {
		t.Fatalf("fault suite setup: %v", sharedErr)
	}
	return shared
}

func setup() (*harness, error) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return nil, err
	}
	h := &harness{root: root}
	if h.app, err = funchost.Load(root); err != nil {
		return nil, err
	}
	if tempDir, err = os.MkdirTemp("", "freshtoken-faults-"); err != nil {
		return nil, err
	}
	// The host runs exactly the name host.json gives.
	h.bin = filepath.Join(tempDir, filepath.Base(h.app.Host.ExecutablePath))
	build := exec.Command("go", "build", "-race", "-o", h.bin, "./handler")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build the handler: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if h.az, err = azuritetest.Run(ctx, azuritetest.Options{Dir: root, Persist: true}); err != nil {
		return nil, err
	}
	return h, nil
}
