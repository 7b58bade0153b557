package main

import (
	"archive/zip"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/e2e/funchost"
)

// readZip returns the zip's entries by name, in order, and their contents.
func readZip(t *testing.T, file string) ([]*zip.File, map[string][]byte) {
	t.Helper()
	zr, err := zip.OpenReader(file)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { zr.Close() })
	content := map[string][]byte{}
	for _, f := range zr.File {
		r, err := f.Open()
		if err != nil {
			t.Fatalf("open %s in the zip: %v", f.Name, err)
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatalf("read %s in the zip: %v", f.Name, err)
		}
		content[f.Name] = b
	}
	return zr.File, content
}

func names(files []*zip.File) []string {
	var n []string
	for _, f := range files {
		n = append(n, f.Name)
	}
	return n
}

// checkExecutable checks the entry's mode as a Unix host reads it from the external
// attributes: made on Unix, a regular file, 0755.
func checkExecutable(t *testing.T, f *zip.File) {
	t.Helper()
	if got := f.CreatorVersion >> 8; got != 3 {
		t.Errorf("%s: created-by system %d; want 3 (Unix), or the mode is ignored", f.Name, got)
	}
	if got := f.ExternalAttrs >> 16; got != 0o100755 {
		t.Errorf("%s: Unix mode %o; want 100755 (regular file, rwxr-xr-x)", f.Name, got)
	}
	if got := f.Mode(); got != 0o755 {
		t.Errorf("%s: mode %v; want -rwxr-xr-x", f.Name, got)
	}
}

// TestPackageRepo packages this repository as `make package` does and checks the zip as the
// Functions host on a Linux plan would use it.
func TestPackageRepo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the handler")
	}
	out := filepath.Join(t.TempDir(), "dist", "freshtoken.zip")
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := run(ctx, []string{"-root", "../../..", "-out", out}, &stdout, &stderr); err != nil {
		t.Fatalf("package: %v\n%s", err, stderr.String())
	}
	files, content := readZip(t, out)

	var hj struct {
		CustomHandler struct {
			Description struct {
				DefaultExecutablePath string `json:"defaultExecutablePath"`
			} `json:"description"`
		} `json:"customHandler"`
	}
	if err := json.Unmarshal(content["host.json"], &hj); err != nil {
		t.Fatalf("host.json in the zip: %v", err)
	}
	exe := hj.CustomHandler.Description.DefaultExecutablePath
	if exe == "" {
		t.Fatal("host.json in the zip names no defaultExecutablePath")
	}
	want := []string{"host.json", "Authorize/function.json", "Callback/function.json", "RefreshTimer/function.json", exe}
	if got := names(files); !slices.Equal(got, want) {
		t.Fatalf("entries %q; want exactly %q", got, want)
	}
	for _, name := range want[:4] {
		repo, err := os.ReadFile(filepath.Join("../../..", filepath.FromSlash(name)))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(content[name], repo) {
			t.Errorf("%s in the zip differs from the repository's", name)
		}
		if got := files[slices.Index(want, name)].Mode(); got != 0o644 {
			t.Errorf("%s: mode %v; want -rw-r--r--", name, got)
		}
	}

	bin := files[len(files)-1]
	checkExecutable(t, bin)
	ef, err := elf.NewFile(bytes.NewReader(content[exe]))
	if err != nil {
		t.Fatalf("%s (defaultExecutablePath) is not an ELF file: %v", exe, err)
	}
	defer ef.Close()
	if ef.Class != elf.ELFCLASS64 || ef.Machine != elf.EM_X86_64 || ef.Type != elf.ET_EXEC {
		t.Errorf("%s: %v %v %v; want ELFCLASS64 EM_X86_64 ET_EXEC", exe, ef.Class, ef.Machine, ef.Type)
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s has a %v program header; want a static binary (CGO_ENABLED=0)", exe, p.Type)
		}
	}
	if !strings.Contains(stdout.String(), out) {
		t.Errorf("output %q does not name the zip %s", stdout.String(), out)
	}

	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skipf("the packaged binary is for linux/amd64; this is %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	startUnpacked(t, out)
}

// startUnpacked unpacks the zip as a Linux host does, honouring each entry's mode, and starts
// it under the emulated Functions host: the host finds the binary through host.json and gets an
// answer on the readiness ping.
func startUnpacked(t *testing.T, zipFile string) {
	t.Helper()
	root := t.TempDir()
	zr, err := zip.OpenReader(zipFile)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		p := filepath.Join(root, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		r, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		w, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, f.Mode().Perm())
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(w, r)
		r.Close()
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
	}

	app, err := funchost.Load(root)
	if err != nil {
		t.Fatalf("load the unpacked app: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	h, err := app.Start(ctx, funchost.StartOptions{
		Env: map[string]string{
			"FUNCTIONS_WORKER_RUNTIME": "custom",
			"AzureWebJobsStorage":      "UseDevelopmentStorage=true", // never reached: no pass runs
			"REFRESH_SCHEDULE":         "0 0 0 1 1 *",
			"OAUTH_CONNECTIONS":        "demo",
			"OAUTH_DEMO_PROVIDER":      "strava",
			"OAUTH_DEMO_CLIENT_ID":     "id",
			"OAUTH_DEMO_CLIENT_SECRET": "secret",
			"OAUTH_DEMO_SCOPES":        "read",
			"LOG_LEVEL":                "warn",
		},
		Stderr: &stderr,
	})
	if err != nil {
		t.Fatalf("the unpacked app does not start under the host: %v\n%s", err, stderr.String())
	}
	resp, err := http.Get(h.HandlerURL() + "/")
	if err != nil {
		t.Errorf("GET / on the unpacked handler: %v", err)
	} else {
		resp.Body.Close()
	}
	if err := h.Stop(ctx); err != nil {
		t.Errorf("stop: %v", err)
	}
}

// TestWriteZipTakesOnlyTheApp packages an app root cluttered with what must stay out, and a
// binary that is not executable on disk: the zip still holds only the app and mode 0755.
func TestWriteZipTakesOnlyTheApp(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"host.json":                  `{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"./bin/handler"}}}`,
		"Timer/function.json":        `{"bindings":[]}`,
		"Http/function.json":         `{"bindings":[]}`,
		"Http/notes.txt":             "not for the host",
		"local.settings.json":        `{"IsEncrypted":false,"Values":{"SECRET":"x"}}`,
		"main.go":                    "package main",
		"internal/x/function.json":   `{"bindings":[]}`,
		"README.md":                  "#",
		"nofunction/something.json":  "{}",
		"Timer/testdata/sample.json": "{}",
		"testdata/sample.json":       "{}",
	}
	for name, body := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(t.TempDir(), "handler")
	if err := os.WriteFile(bin, []byte("\x7fELF not really"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := readApp(root)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out", "app.zip")
	if err := writeZip(out, a, bin, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	zf, content := readZip(t, out)
	want := []string{"host.json", "Http/function.json", "Timer/function.json", "bin/handler"}
	if got := names(zf); !slices.Equal(got, want) {
		t.Fatalf("entries %q; want exactly %q", got, want)
	}
	checkExecutable(t, zf[3])
	if got := string(content["bin/handler"]); got != "\x7fELF not really" {
		t.Errorf("bin/handler holds %q; want the binary's bytes", got)
	}
	if got := string(content["Timer/function.json"]); got != files["Timer/function.json"] {
		t.Errorf("Timer/function.json holds %q; want %q", got, files["Timer/function.json"])
	}
	leftovers, err := filepath.Glob(filepath.Join(filepath.Dir(out), "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(leftovers) != 1 {
		t.Errorf("the output folder holds %q; want only the zip", leftovers)
	}
}

func TestReadAppRefuses(t *testing.T) {
	host := func(exe string) string {
		b, _ := json.Marshal(exe)
		return `{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":` + string(b) + `}}}`
	}
	fn := `{"bindings":[]}`
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"no host.json", map[string]string{"A/function.json": fn}, "host.json"},
		{"broken host.json", map[string]string{"host.json": "{", "A/function.json": fn}, "host.json"},
		{"no executable", map[string]string{"host.json": `{"version":"2.0"}`, "A/function.json": fn}, "defaultExecutablePath: missing"},
		{"setting", map[string]string{"host.json": host("%EXE%"), "A/function.json": fn}, "app setting"},
		{"absolute", map[string]string{"host.json": host("/home/site/wwwroot/x"), "A/function.json": fn}, "absolute"},
		{"outside", map[string]string{"host.json": host("../x"), "A/function.json": fn}, "not a file inside the app root"},
		{"dot", map[string]string{"host.json": host("."), "A/function.json": fn}, "not a file inside the app root"},
		{"backslash", map[string]string{"host.json": host(`bin\x.exe`), "A/function.json": fn}, "backslash"},
		{"clash", map[string]string{"host.json": host("A/function.json"), "A/function.json": fn}, "is the path of A/function.json"},
		{"no function", map[string]string{"host.json": host("x"), "A/other.json": fn}, "holds a function.json"},
		{"broken function.json", map[string]string{"host.json": host("x"), "A/function.json": "{"}, "function.json is not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for name, body := range tt.files {
				p := filepath.Join(root, filepath.FromSlash(name))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := readApp(root)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("readApp: %v; want an error containing %q", err, tt.want)
			}
		})
	}
}
