// Package logging builds the process logger. Under the Functions host, stdout lines become
// Information logs and stderr lines Error logs (Warning when the line contains "warn"), so
// warnings and errors go to stderr and everything else to stdout.
package logging

import (
	"io"

	"github.com/rs/zerolog"
)

// New returns a logger at level writing JSON, or human-readable lines when format is "console".
func New(level zerolog.Level, format string, stdout, stderr io.Writer) zerolog.Logger {
	if format == "console" {
		stdout = zerolog.ConsoleWriter{Out: stdout, TimeFormat: "15:04:05", NoColor: true}
		stderr = zerolog.ConsoleWriter{Out: stderr, TimeFormat: "15:04:05", NoColor: true}
	}
	w := splitWriter{out: stdout, err: stderr}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}

// splitWriter sends warnings and worse to err, the rest to out.
type splitWriter struct{ out, err io.Writer }

func (s splitWriter) Write(p []byte) (int, error) { return s.out.Write(p) }

func (s splitWriter) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	if l >= zerolog.WarnLevel && l != zerolog.NoLevel {
		return s.err.Write(p)
	}
	return s.out.Write(p)
}
