package browser

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMissingChromium runs this package's browser test without a browser: under CI it must
// fail, naming the package to install; elsewhere it is skipped.
func TestMissingChromium(t *testing.T) {
	if os.Getenv("BROWSER_CHILD") != "" {
		t.Skip("in the child process")
	}
	for _, tc := range []struct {
		ci       string
		wantFail bool
		want     string
	}{
		{"true", true, "--- FAIL: TestStatusPageInBrowser"},
		{"", false, "--- SKIP: TestStatusPageInBrowser"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestStatusPageInBrowser$", "-test.v")
		var env []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "CI=") && !strings.HasPrefix(kv, "CHROMIUM=") {
				env = append(env, kv)
			}
		}
		cmd.Env = append(env, "BROWSER_CHILD=1", "CHROMIUM=/nonexistent/chromium", "CI="+tc.ci)
		out, err := cmd.CombinedOutput()
		if failed := err != nil; failed != tc.wantFail || !strings.Contains(string(out), tc.want) ||
			!strings.Contains(string(out), "apt-get install -y chromium") {
			t.Errorf("CI=%q without chromium: failed=%v, output:\n%s\nwant failed=%v and %q", tc.ci, failed, out, tc.wantFail, tc.want)
		}
	}
}
