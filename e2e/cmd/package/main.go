// Command package writes the deployable zip of the function app (`make package`): host.json,
// every <Function>/function.json of the app root, and the handler built as a static Linux amd64
// binary at the path host.json's customHandler.description.defaultExecutablePath names. Nothing
// else goes in: no local.settings.json, no sources, no test data.
//
// The binary is stored with Unix mode 0755 in the zip's external attributes (created-by Unix),
// whatever machine builds the zip, so that the Functions host can run it: zips made on Windows
// or by generic tools often drop the executable bit, and the app then fails with "permission
// denied". The JSON files are stored with mode 0644.
//
//	go run ./cmd/package -root .. -out ../dist/freshtoken.zip
package main

import (
	"archive/zip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "package:", err)
		os.Exit(1)
	}
}

// run parses the flags, builds the handler and writes the zip.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("package", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("root", "..", "the function app root: host.json and the function folders, and the Go module of the handler")
	out := fs.String("out", "", "the zip to write (default <root>/dist/freshtoken.zip)")
	pkg := fs.String("pkg", "./handler", "the handler's main package, relative to -root")
	goCmd := fs.String("go", "go", "the go command")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *out == "" {
		*out = filepath.Join(*root, "dist", "freshtoken.zip")
	}
	a, err := readApp(*root)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "freshtoken-package-")
	if err != nil {
		return fmt.Errorf("build the handler: %w", err)
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "handler")
	if err := buildHandler(ctx, *goCmd, a.Root, *pkg, bin); err != nil {
		return err
	}
	if err := writeZip(*out, a, bin, time.Now()); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: %s\n", *out, strings.Join(a.entries(), ", "))
	return nil
}

// app is what the Functions host needs from an app root.
type app struct {
	Root string
	// Executable is defaultExecutablePath as a clean, relative, slash-separated zip path.
	Executable string
	// Functions are the top-level folders holding a function.json, sorted.
	Functions []string
}

// entries are the zip's entry names in the order writeZip writes them.
func (a app) entries() []string {
	names := []string{"host.json"}
	for _, f := range a.Functions {
		names = append(names, f+"/function.json")
	}
	return append(names, a.Executable)
}

// readApp reads root/host.json for the executable path and finds the function folders: every
// top-level folder with a function.json. Every JSON file must parse, since the host would
// refuse a broken one after deployment.
func readApp(root string) (app, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return app{}, fmt.Errorf("read the app: %w", err)
	}
	a := app{Root: abs}
	data, err := os.ReadFile(filepath.Join(abs, "host.json"))
	if err != nil {
		return app{}, fmt.Errorf("read the app: %w", err)
	}
	var hj struct {
		CustomHandler struct {
			Description struct {
				DefaultExecutablePath string `json:"defaultExecutablePath"`
			} `json:"description"`
		} `json:"customHandler"`
	}
	if err := json.Unmarshal(data, &hj); err != nil {
		return app{}, fmt.Errorf("read the app: host.json: %w", err)
	}
	a.Executable, err = zipPath(hj.CustomHandler.Description.DefaultExecutablePath)
	if err != nil {
		return app{}, fmt.Errorf("read the app: host.json: customHandler.description.defaultExecutablePath: %w", err)
	}

	dirs, err := os.ReadDir(abs)
	if err != nil {
		return app{}, fmt.Errorf("read the app: %w", err)
	}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		fj := filepath.Join(abs, d.Name(), "function.json")
		data, err := os.ReadFile(fj)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return app{}, fmt.Errorf("read the app: %w", err)
		}
		if !json.Valid(data) {
			return app{}, fmt.Errorf("read the app: %s is not valid JSON", fj)
		}
		a.Functions = append(a.Functions, d.Name())
	}
	if len(a.Functions) == 0 {
		return app{}, fmt.Errorf("read the app: no folder of %s holds a function.json", abs)
	}
	slices.Sort(a.Functions)
	for _, e := range a.entries()[:len(a.Functions)+1] {
		if strings.EqualFold(e, a.Executable) {
			return app{}, fmt.Errorf("read the app: defaultExecutablePath %q is the path of %s", a.Executable, e)
		}
	}
	return a, nil
}

// zipPath turns defaultExecutablePath into the entry name the host will run: relative to the
// app root, without "./", slash-separated.
func zipPath(p string) (string, error) {
	switch {
	case strings.TrimSpace(p) == "":
		return "", errors.New("missing")
	case strings.Contains(p, "%"):
		return "", fmt.Errorf("%q names an app setting (%%NAME%%), which is only known in Azure; give the file name", p)
	case strings.Contains(p, `\`):
		return "", fmt.Errorf("%q has a backslash; a Linux plan needs a slash-separated path", p)
	case path.IsAbs(p):
		return "", fmt.Errorf("%q is absolute; it must be relative to the app root", p)
	}
	c := path.Clean(p)
	if c == "." || c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("%q is not a file inside the app root", p)
	}
	return c, nil
}

// buildHandler builds pkg (relative to root) as a static Linux amd64 binary at out.
func buildHandler(ctx context.Context, goCmd, root, pkg, out string) error {
	cmd := exec.CommandContext(ctx, goCmd, "build", "-trimpath", "-buildvcs=auto", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build the handler: %w\n%s", err, b)
	}
	return nil
}

// writeZip writes the zip of a, with the binary at a.Executable, atomically: a failed run
// leaves no partial zip at zipFile.
func writeZip(zipFile string, a app, binary string, modified time.Time) (err error) {
	if err := os.MkdirAll(filepath.Dir(zipFile), 0o755); err != nil {
		return fmt.Errorf("write the zip: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(zipFile), ".freshtoken-*.zip")
	if err != nil {
		return fmt.Errorf("write the zip: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	zw := zip.NewWriter(f)
	add := func(name, src string, mode os.FileMode) error {
		h := &zip.FileHeader{Name: name, Method: zip.Deflate, Modified: modified}
		h.SetMode(mode) // also marks the entry as made on Unix, so the mode is honoured
		w, err := zw.CreateHeader(h)
		if err != nil {
			return err
		}
		r, err := os.Open(src)
		if err != nil {
			return err
		}
		defer r.Close()
		_, err = io.Copy(w, r)
		return err
	}
	if err := add("host.json", filepath.Join(a.Root, "host.json"), 0o644); err != nil {
		return fmt.Errorf("write the zip: host.json: %w", err)
	}
	for _, fn := range a.Functions {
		name := fn + "/function.json"
		if err := add(name, filepath.Join(a.Root, fn, "function.json"), 0o644); err != nil {
			return fmt.Errorf("write the zip: %s: %w", name, err)
		}
	}
	if err := add(a.Executable, binary, 0o755); err != nil {
		return fmt.Errorf("write the zip: %s: %w", a.Executable, err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("write the zip: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write the zip: %w", err)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return fmt.Errorf("write the zip: %w", err)
	}
	if err := os.Rename(f.Name(), zipFile); err != nil {
		return fmt.Errorf("write the zip: %w", err)
	}
	return nil
}
