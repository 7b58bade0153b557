package config

import (
	"strconv"
	"strings"
)

// Problem is one missing or malformed setting. Message never holds a secret value.
type Problem struct {
	Setting string
	Message string
}

func (p Problem) String() string { return p.Setting + ": " + p.Message }

// SettingsError is every problem Load found, in the order the settings were read.
type SettingsError struct {
	Problems []Problem
}

// Error lists the problems one per line after a summary line, so that each lands in its own
// log line under the Functions host.
func (e *SettingsError) Error() string {
	var b strings.Builder
	if len(e.Problems) == 1 {
		b.WriteString("1 problem with the settings:")
	} else {
		b.WriteString(strconv.Itoa(len(e.Problems)) + " problems with the settings:")
	}
	for _, p := range e.Problems {
		b.WriteString("\n" + p.String())
	}
	return b.String()
}
