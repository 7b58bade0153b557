package logging

import (
	"bytes"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestNewSplitsByLevel(t *testing.T) {
	var out, errw bytes.Buffer
	log := New(zerolog.DebugLevel, "json", &out, &errw)
	log.Info().Msg("hello-info")
	log.Warn().Msg("hello-warn")
	log.Error().Msg("hello-error")
	log.Debug().Msg("hello-debug")
	if got := out.String(); !strings.Contains(got, "hello-info") || !strings.Contains(got, "hello-debug") || strings.Contains(got, "hello-warn") {
		t.Errorf("stdout = %q; want info and debug only", got)
	}
	if got := errw.String(); !strings.Contains(got, "hello-warn") || !strings.Contains(got, "hello-error") || strings.Contains(got, "hello-info") {
		t.Errorf("stderr = %q; want warn and error only", got)
	}
	// The host marks stderr lines as Warning only when they contain "warn".
	for _, line := range strings.Split(strings.TrimSpace(errw.String()), "\n") {
		if strings.Contains(line, "hello-warn") && !strings.Contains(line, `"level":"warn"`) {
			t.Errorf("warning line %q lacks the level the host reads", line)
		}
	}
}

func TestNewRespectsLevel(t *testing.T) {
	var out, errw bytes.Buffer
	log := New(zerolog.WarnLevel, "console", &out, &errw)
	log.Info().Msg("quiet")
	log.Warn().Msg("loud")
	if out.Len() != 0 {
		t.Errorf("stdout = %q; want nothing below warn", out.String())
	}
	if !strings.Contains(errw.String(), "loud") {
		t.Errorf("stderr = %q; want the warning", errw.String())
	}
}
