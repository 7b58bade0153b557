// Package azuritetest runs the real Azurite table service for tests, from the node_modules of
// the repository (`npm ci` installs it, pinned in package.json). Each Server listens on its own
// loopback port and is killed, with its process group, by Stop. By default it keeps its data in
// memory only, so data does not survive Restart; with Options.Persist it keeps it on disk in its
// own temporary directory, and Restart keeps it (Stop still removes it).
package azuritetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Azurite's well-known development account. Public, documented by Microsoft; not a secret.
const (
	AccountName = "devstoreaccount1"
	AccountKey  = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// Options configure Run. The zero value works.
type Options struct {
	// Dir is where the search for package.json starts, going up. Default: the working directory.
	Dir string
	// Port is the loopback port to listen on. 0 picks a free one.
	Port int
	// Log, if set, receives Azurite's output, access log included. Otherwise Azurite runs with
	// --silent and its output is kept only to explain a failed start.
	Log io.Writer
	// StartTimeout bounds each start. Default 60 s.
	StartTimeout time.Duration
	// Persist keeps the data on disk (Azurite's --location, in the server's own temporary
	// directory) instead of in memory, so that it survives Restart, as a restarted table service
	// keeps what it acknowledged. Stopping then interrupts Azurite first (SIGINT), which makes it
	// save before it exits.
	Persist bool
}

// Server is one running Azurite table service.
type Server struct {
	port    int
	bin     string
	workDir string
	log     io.Writer
	timeout time.Duration
	persist bool

	mu   sync.Mutex
	proc *process // nil when stopped
}

// process is one Azurite process and what watches it.
type process struct {
	cmd   *exec.Cmd
	out   *watcher
	done  chan struct{} // closed when the process has exited and its output is drained
	err   error         // cmd.Wait's result, set before done is closed
	ready chan struct{} // closed when Azurite says it has started
}

// ErrNotInstalled means Azurite (or Node.js) is missing: run `npm ci` at the repository root.
var ErrNotInstalled = errors.New("azuritetest: Azurite is not installed")

// Start runs Azurite for the test and stops it at the test's cleanup. It fails the test (it does
// not skip it) when Azurite cannot start, for example before `npm ci`.
func Start(t testing.TB) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Run(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop Azurite: %v", err)
		}
	})
	return s
}

// Run starts Azurite and returns once it accepts connections. ctx bounds the start only; the
// process runs until Stop. The caller must call Stop.
func Run(ctx context.Context, o Options) (*Server, error) {
	bin, err := findAzurite(o.Dir)
	if err != nil {
		return nil, err
	}
	workDir, err := os.MkdirTemp("", "azuritetest-")
	if err != nil {
		return nil, fmt.Errorf("azuritetest: %w", err)
	}
	s := &Server{port: o.Port, bin: bin, workDir: workDir, log: o.Log, timeout: o.StartTimeout, persist: o.Persist}
	if s.timeout <= 0 {
		s.timeout = 60 * time.Second
	}
	// A port picked here may be taken by someone else before Azurite binds it: pick again.
	for attempt := 1; ; attempt++ {
		if o.Port == 0 {
			if s.port, err = freePort(); err != nil {
				os.RemoveAll(workDir)
				return nil, fmt.Errorf("azuritetest: pick a port: %w", err)
			}
		}
		err = s.start(ctx)
		if err == nil {
			return s, nil
		}
		if o.Port != 0 || attempt == 3 || !errors.Is(err, errAddrInUse) {
			os.RemoveAll(workDir)
			return nil, err
		}
	}
}

// Port is the loopback port Azurite listens on; it stays the same across Restart.
func (s *Server) Port() int { return s.port }

// Addr is Azurite's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// TableEndpoint is the table service URL of the development account.
func (s *Server) TableEndpoint() string { return "http://" + s.Addr() + "/" + AccountName }

// ConnectionString reaches this Azurite with the development account.
func (s *Server) ConnectionString() string { return s.ConnectionStringFor(s.Addr()) }

// ConnectionStringFor is the connection string for the development account at another host:port,
// such as a fault-injecting proxy in front of Addr.
func (s *Server) ConnectionStringFor(hostPort string) string {
	return "DefaultEndpointsProtocol=http;AccountName=" + AccountName + ";AccountKey=" + AccountKey +
		";TableEndpoint=http://" + hostPort + "/" + AccountName + ";"
}

// Process is the running Azurite process (the leader of its process group), or nil after Stop.
func (s *Server) Process() *os.Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return nil
	}
	return s.proc.cmd.Process
}

// Stop kills Azurite's process group and waits for it to exit. It removes Azurite's working
// directory; calling it again is harmless.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.stopLocked()
	if rerr := os.RemoveAll(s.workDir); rerr != nil && err == nil {
		err = fmt.Errorf("azuritetest: %w", rerr)
	}
	return err
}

// Restart stops Azurite and starts it again on the same port. The stored data is lost, unless
// Options.Persist was set.
func (s *Server) Restart(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.stopLocked(); err != nil {
		return err
	}
	if err := os.MkdirAll(s.workDir, 0o700); err != nil {
		return fmt.Errorf("azuritetest: %w", err)
	}
	// The old socket is closed once the process is gone, but give the kernel a moment if not.
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if err = s.startLocked(ctx); !errors.Is(err, errAddrInUse) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
	return err
}

func (s *Server) start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.startLocked(ctx)
}

var errAddrInUse = errors.New("address in use")

func (s *Server) startLocked(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	args := []string{
		"--tableHost", "127.0.0.1",
		"--tablePort", strconv.Itoa(s.port),
		"--disableTelemetry",
		"--skipApiVersionCheck",
	}
	if s.persist {
		args = append(args, "--location", s.workDir)
	} else {
		args = append(args, "--inMemoryPersistence")
	}
	if s.log == nil {
		args = append(args, "--silent") // no access log; start-up messages and errors remain
	}
	cmd := exec.Command(s.bin, args...)
	// Azurite writes nothing with in-memory persistence (which excludes --location), but run it
	// in a directory of its own in case a version does. With Persist, that is where its data is.
	cmd.Dir = s.workDir
	p := &process{cmd: cmd, done: make(chan struct{}), ready: make(chan struct{})}
	p.out = &watcher{log: s.log, marker: []byte("successfully started"), found: p.ready}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.WaitDelay = 5 * time.Second
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("azuritetest: start %s: %w", s.bin, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	s.proc = p

	select {
	case <-p.ready:
	case <-p.done:
		s.proc = nil
		out := p.out.tail()
		if bytes.Contains(out, []byte("EADDRINUSE")) {
			return fmt.Errorf("azuritetest: port %d: %w", s.port, errAddrInUse)
		}
		return fmt.Errorf("azuritetest: Azurite exited during start-up (%v); its output:\n%s", p.err, out)
	case <-ctx.Done():
		_ = s.stopLocked()
		return fmt.Errorf("azuritetest: Azurite did not start: %w; its output:\n%s", ctx.Err(), p.out.tail())
	}
	// Azurite said so; check that it is our listener that answers.
	d := net.Dialer{Timeout: 2 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", s.Addr())
	if err != nil {
		_ = s.stopLocked()
		return fmt.Errorf("azuritetest: Azurite started but %s refuses connections: %w", s.Addr(), err)
	}
	conn.Close()
	return nil
}

func (s *Server) stopLocked() error {
	p := s.proc
	if p == nil {
		return nil
	}
	s.proc = nil
	select {
	case <-p.done:
		return nil // it had already exited
	default:
	}
	if s.persist && interrupt(p.cmd) {
		// Azurite saves its database when interrupted; SIGTERM ends it at once, losing what
		// changed since its last autosave (every 5 s).
		select {
		case <-p.done:
			return nil
		case <-time.After(15 * time.Second):
		}
	}
	terminate(p.cmd)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		kill(p.cmd)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			return fmt.Errorf("azuritetest: Azurite (pid %d) did not exit", p.cmd.Process.Pid)
		}
	}
	return nil
}

// findAzurite walks up from dir (default: the working directory) to the first directory holding
// package.json and returns its node_modules/.bin/azurite-table.
func findAzurite(dir string) (string, error) {
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return "", fmt.Errorf("azuritetest: %w", err)
		}
		dir = wd
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("azuritetest: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "package.json")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%w: no package.json above the working directory", ErrNotInstalled)
		}
		dir = parent
	}
	bin := filepath.Join(dir, "node_modules", ".bin", "azurite-table")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("%w: %s is missing; run `npm ci` in %s", ErrNotInstalled, bin, dir)
	}
	if _, err := exec.LookPath("node"); err != nil {
		return "", fmt.Errorf("%w: node is not on PATH; install Node.js, then run `npm ci` in %s", ErrNotInstalled, dir)
	}
	return bin, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// watcher collects a process's output: it forwards it to log, keeps the last bytes to explain a
// failure, and closes found the first time marker appears.
type watcher struct {
	log    io.Writer
	marker []byte
	found  chan struct{}

	mu   sync.Mutex
	buf  []byte
	seen bool
}

const tailSize = 16 << 10

func (w *watcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.log != nil {
		_, _ = w.log.Write(p)
	}
	w.buf = append(w.buf, p...)
	if !w.seen && bytes.Contains(w.buf, w.marker) {
		w.seen = true
		close(w.found)
	}
	if len(w.buf) > tailSize {
		w.buf = append(w.buf[:0], w.buf[len(w.buf)-tailSize:]...)
	}
	return len(p), nil
}

func (w *watcher) tail() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return []byte(strings.TrimSpace(string(w.buf)))
}
