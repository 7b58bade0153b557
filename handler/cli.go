package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/freshtoken/freshtoken/internal/statuspage"

	"github.com/freshtoken/freshtoken/internal/config"
)

// Exit statuses of the command line.
const (
	exitOK = 0
	// exitFailed: refresh left a due connection without a fresh pair; status found a connection
	// that needs a person; import was refused by the provider or by the table.
	exitFailed = 1
	// exitUsage: an unknown subcommand or flag, or invalid settings.
	exitUsage = 2
)

// usage is the help text: on stdout for help, on stderr after a misuse.
const usage = `Usage:
  freshtoken [--settings FILE]               serve: the Azure Functions custom handler, or standalone
  freshtoken refresh [--settings FILE]       refresh every due connection once, then exit
  freshtoken status [--json] [--state STATE] [--settings FILE]
                                             show each connection's and account's state
  freshtoken import CONNECTION [--replace] [--settings FILE]
                                             store a pair from a refresh token read from standard
                                             input (hidden prompt on a terminal)
  freshtoken invite CONNECTION LABEL [--for 7d] [--settings FILE]
                                             print an invitation URL that connects one account
                                             (no function key needed); --for: days or a duration
  freshtoken invite CONNECTION --many N --prefix P [--for 7d] [--settings FILE]
                                             print N invitations as CSV (label,url), labelled
                                             P1..PN
  freshtoken remove CONNECTION [LABEL] [--keep-on-failure] [--settings FILE]
                                             revoke the account at the provider where it can be,
                                             then delete its rows (also when the provider cannot
                                             be told, unless --keep-on-failure)
  freshtoken rekey [--settings FILE]         re-encrypt every secret in the table under the first
                                             key of TOKEN_ENCRYPTION_KEYS
  freshtoken reader-url CONNECTION [--for 90d] [--settings FILE]
                                             print a SAS URL that reads only the connection's
                                             AccessToken row (days, or a Go duration)
  freshtoken version                         print the module version and VCS revision
  freshtoken help                            print this help

Settings come from the environment; --settings FILE also reads the "Values" of a
local.settings.json, and a non-empty environment variable wins over the file.

Exit status: 0 done; 1 a connection failed or needs a person, or the provider or the table
refused; 2 misuse, invalid settings or an unknown connection.
`

// exitError carries the process exit status for main. main prints Err (when not nil) and exits
// with Code.
type exitError struct {
	Code int
	Err  error
}

func (e *exitError) Error() string {
	if e.Err == nil {
		return "exit status " + strconv.Itoa(e.Code)
	}
	return e.Err.Error()
}

func (e *exitError) Unwrap() error { return e.Err }

// usageError is a command line that freshtoken does not accept.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{msg: fmt.Sprintf(format, a...)} }

// exitStatus returns the exit status for err: 0 for nil, Code for an *exitError, 2 for a misuse,
// 1 otherwise. It writes the error to stderr, and after a misuse the usage.
func exitStatus(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "freshtoken: %s\n\n%s", ue.msg, usage)
		return exitUsage
	}
	code := exitFailed
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.Code
		if ee.Err == nil {
			return code
		}
	}
	fmt.Fprintln(stderr, "freshtoken:", err)
	return code
}

// command is a parsed command line.
type command struct {
	Name       string // "" (serve), "refresh", "status", "import", "invite", "remove", "rekey", "reader-url", "help" or "version"
	Settings   string // --settings FILE; "" when not given
	JSON       bool   // status --json
	State      string // status --state STATE: only the accounts in that state
	Connection string // import, invite, remove CONNECTION
	Replace    bool   // import --replace
	Label      string // invite, remove: CONNECTION LABEL
	For        string // invite, reader-url --for: validity, as given
	Many       int    // invite --many N
	Prefix     string // invite --prefix P
	Keep       bool   // remove --keep-on-failure
	// Valid is reader-url's --for, parsed; defaultReaderValidity when not given.
	Valid time.Duration
}

// defaultReaderValidity is how long a reader URL is valid without --for.
const defaultReaderValidity = 90 * 24 * time.Hour

// maxValidity bounds --for: a URL that outlives the account key's rotation is useless.
const maxValidity = 10 * 365 * 24 * time.Hour

// parseArgs parses the arguments after the program name. Flags may come before or after the
// subcommand, with one or two dashes, and take their value as "--settings FILE" or
// "--settings=FILE"; "--" ends the flags. -h and --help anywhere mean help. Every other problem
// is a *usageError.
func parseArgs(args []string) (command, error) {
	var c command
	var positional []string
	settingsGiven := false
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if len(arg) < 2 || arg[0] != '-' {
			positional = append(positional, arg)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(arg[1:], "-"), "=")
		switch name {
		case "h", "help":
			return command{Name: "help"}, nil
		case "settings":
			if settingsGiven {
				return command{}, usagef("--settings given twice")
			}
			settingsGiven = true
			if !hasValue {
				if i+1 >= len(args) {
					return command{}, usagef("--settings needs a file: --settings local.settings.json")
				}
				i++
				value = args[i]
			}
			if value == "" {
				return command{}, usagef("--settings needs a file: --settings local.settings.json")
			}
			c.Settings = value
		case "for", "many", "prefix", "state":
			if !hasValue {
				if i+1 >= len(args) {
					return command{}, usagef("--%s needs a value", name)
				}
				i++
				value = args[i]
			}
			if value == "" {
				return command{}, usagef("--%s needs a value", name)
			}
			switch name {
			case "for":
				c.For = value
			case "prefix":
				c.Prefix = value
			case "state":
				if _, err := statuspage.AccountState(value); err != nil {
					return command{}, usagef("--state %s: want ok, retrying or needs_consent", quoteArg(value))
				}
				c.State = value
			case "many":
				n, err := strconv.Atoi(value)
				if err != nil || n < 1 {
					return command{}, usagef("--many needs a number of invitations, 1 or more")
				}
				c.Many = n
			}
		case "keep-on-failure":
			if hasValue {
				return command{}, usagef("--%s takes no value", name)
			}
			c.Keep = true
		case "json", "replace":
			if hasValue {
				return command{}, usagef("--%s takes no value", name)
			}
			if name == "json" {
				c.JSON = true
			} else {
				c.Replace = true
			}
		default:
			return command{}, usagef("unknown flag %s", quoteArg("--"+name))
		}
	}

	if len(positional) > 0 {
		c.Name = positional[0]
		positional = positional[1:]
	}
	switch c.Name {
	case "help":
		return command{Name: "help"}, nil
	case "", "refresh", "status", "rekey", "version":
		if len(positional) > 0 {
			return command{}, usagef("%s takes no arguments; got %s", nameOrServe(c.Name), quoteArg(positional[0]))
		}
	case "import":
		switch len(positional) {
		case 0:
			return command{}, usagef("import needs the connection name: freshtoken import CONNECTION < token-file")
		case 1:
			c.Connection = positional[0]
		default:
			return command{}, usagef("import takes one connection name; the refresh token is read from standard input, never from an argument")
		}
	case "invite", "remove":
		if len(positional) == 0 || len(positional) > 2 {
			return command{}, usagef("%s needs the connection name and the account label: freshtoken %s CONNECTION LABEL", c.Name, c.Name)
		}
		c.Connection = positional[0]
		if len(positional) == 2 {
			c.Label = positional[1]
		}
		if c.Name == "invite" {
			switch {
			case c.Prefix != "" && c.Many == 0:
				return command{}, usagef("--prefix goes with --many")
			case c.Label == "" && c.Many == 0:
				return command{}, usagef("invite needs an account label, or --many N --prefix P for a roster")
			case c.Label != "" && c.Many > 0:
				return command{}, usagef("invite takes an account label or --many N, not both")
			}
		}
	case "reader-url":
		switch len(positional) {
		case 0:
			return command{}, usagef("reader-url needs the connection name: freshtoken reader-url CONNECTION [--for 90d]")
		case 1:
			c.Connection = positional[0]
		default:
			return command{}, usagef("reader-url takes one connection name; got %s more", quoteArg(positional[1]))
		}
		c.Valid = defaultReaderValidity
		if c.For != "" {
			d, err := parseValidity(c.For)
			if err != nil {
				return command{}, err
			}
			c.Valid = d
		}
	default:
		return command{}, usagef("unknown subcommand %s", quoteArg(c.Name))
	}
	if c.For != "" && c.Name != "invite" && c.Name != "reader-url" {
		return command{}, usagef("--for is a flag of invite and reader-url")
	}
	if (c.Many > 0 || c.Prefix != "") && c.Name != "invite" {
		return command{}, usagef("--many and --prefix are flags of invite")
	}
	if c.Keep && c.Name != "remove" {
		return command{}, usagef("--keep-on-failure is a flag of remove")
	}
	if c.JSON && c.Name != "status" {
		return command{}, usagef("--json is a flag of status")
	}
	if c.State != "" && c.Name != "status" {
		return command{}, usagef("--state is a flag of status")
	}
	if c.Replace && c.Name != "import" {
		return command{}, usagef("--replace is a flag of import")
	}
	if c.Settings != "" && c.Name == "version" {
		return command{}, usagef("version reads no settings")
	}
	return c, nil
}

// parseValidity parses --for: a whole number of days with a d suffix, optionally followed by a Go
// duration (7d, 1d12h), or a Go duration (36h, 90m). It must be positive and at most ten years.
// Its error is a *usageError.
func parseValidity(v string) (time.Duration, error) {
	bad := usagef("--for %s: want days or a duration, such as 90d, 36h or 1d12h", quoteArg(v))
	var d time.Duration
	rest := v
	if i := strings.IndexByte(v, 'd'); i >= 0 {
		days, err := strconv.Atoi(v[:i])
		if err != nil || days < 0 || days > int(maxValidity/(24*time.Hour)) {
			return 0, bad
		}
		d = time.Duration(days) * 24 * time.Hour
		rest = v[i+1:]
	}
	if rest != "" {
		e, err := time.ParseDuration(rest)
		if err != nil || strings.HasPrefix(rest, "-") || strings.HasPrefix(rest, "+") {
			return 0, bad
		}
		d += e
	}
	if d <= 0 || d > maxValidity {
		return 0, usagef("--for %s: want more than 0 and at most 3650d", quoteArg(v))
	}
	return d, nil
}

func nameOrServe(name string) string {
	if name == "" {
		return "freshtoken (serving)"
	}
	return name
}

// quoteArg quotes a command-line word for a message when it looks like a name: a misplaced
// argument can be a secret pasted in the wrong place, so anything longer or with other
// characters is described, not shown.
func quoteArg(s string) string {
	if len(s) <= 20 && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == "" {
		return strconv.Quote(s)
	}
	return "(" + strconv.Itoa(len(s)) + " characters, not shown in case it is a secret)"
}

// invocation is what a subcommand gets: the settings and the standard streams.
type invocation struct {
	// Getenv reads a setting: the environment, over the --settings file when one was given.
	Getenv func(string) string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// commands are the subcommands' implementations, given to dispatch by main. Each returns nil
// for exit status 0, an *exitError for another status, or an error (status 1), and a
// *config.SettingsError when the settings are invalid (status 2).
type commands struct {
	// Serve runs the custom handler or standalone server until ctx ends.
	Serve func(ctx context.Context, inv invocation) error
	// Refresh runs one pass over the due connections.
	Refresh func(ctx context.Context, inv invocation) error
	// Status prints the connections' states, as JSON when asJSON, listing only the accounts in
	// state ("" every account).
	Status func(ctx context.Context, inv invocation, asJSON bool, state string) error
	// Import stores a pair obtained from a refresh token that it reads with readRefreshToken.
	Import func(ctx context.Context, inv invocation, connection string, replace bool) error
	// Invite prints invitations (c.Connection, c.Label or c.Many and c.Prefix, c.For).
	Invite func(ctx context.Context, inv invocation, c command) error
	// Remove revokes and deletes an account (c.Connection, c.Label, c.Keep).
	Remove func(ctx context.Context, inv invocation, c command) error
	// Rekey re-encrypts every secret in the table under the first key.
	Rekey func(ctx context.Context, inv invocation) error
	// ReaderURL prints a SAS URL reading only connection's AccessToken row, valid for valid.
	ReaderURL func(ctx context.Context, inv invocation, connection string, valid time.Duration) error
}

// dispatch parses args and runs the subcommand they name with the settings of the environment
// (environ) and, with --settings, of the file. help and version need no settings. A misuse or a
// settings file that cannot be read is reported with exit status 2, as are invalid settings
// from a subcommand (not from Serve, whose start-up failure keeps status 1). Give the result to
// exitStatus.
func dispatch(ctx context.Context, args []string, environ func(string) string, stdin io.Reader, stdout, stderr io.Writer, cmds commands) error {
	c, err := parseArgs(args)
	if err != nil {
		return err
	}
	switch c.Name {
	case "help":
		_, err := io.WriteString(stdout, usage)
		return err
	case "version":
		bi, ok := debug.ReadBuildInfo()
		return writeVersion(stdout, bi, ok)
	}

	inv := invocation{Getenv: environ, Stdin: stdin, Stdout: stdout, Stderr: stderr}
	if c.Settings != "" {
		sf, err := config.ReadSettingsFile(c.Settings)
		if err != nil {
			return &exitError{Code: exitUsage, Err: err}
		}
		if names := sf.Overridden(environ); len(names) > 0 {
			fmt.Fprintf(stderr, "freshtoken: warning: the environment overrides these settings of %s: %s\n", sf.Path, strings.Join(names, ", "))
		}
		if names := environOnly(sf, environ); len(names) > 0 {
			fmt.Fprintf(stderr, "freshtoken: warning: the Azure SDK reads %s from the process environment only, not from %s: set them in the environment\n", strings.Join(names, ", "), sf.Path)
		}
		inv.Getenv = sf.Getenv(environ)
	}

	switch c.Name {
	case "":
		return cmds.Serve(ctx, inv)
	case "refresh":
		err = cmds.Refresh(ctx, inv)
	case "status":
		err = cmds.Status(ctx, inv, c.JSON, c.State)
	case "import":
		err = cmds.Import(ctx, inv, c.Connection, c.Replace)
	case "invite":
		err = cmds.Invite(ctx, inv, c)
	case "remove":
		err = cmds.Remove(ctx, inv, c)
	case "rekey":
		err = cmds.Rekey(ctx, inv)
	case "reader-url":
		err = cmds.ReaderURL(ctx, inv, c.Connection, c.Valid)
	}
	var se *config.SettingsError
	var ee *exitError
	if errors.As(err, &se) && !errors.As(err, &ee) {
		return &exitError{Code: exitUsage, Err: err}
	}
	return err
}

// environOnly returns, sorted, the settings of the file that only the process environment can
// give: the AZURE_* variables that azidentity reads itself (AZURE_CLIENT_ID picks the managed
// identity), when the environment does not set them too.
func environOnly(sf *config.SettingsFile, environ func(string) string) []string {
	var names []string
	for name, v := range sf.Values {
		if strings.HasPrefix(name, "AZURE_") && v != "" && environ(name) == "" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// writeVersion prints the module version and the VCS revision from the build info. A binary
// built outside a git checkout, or with -buildvcs=false, has no revision, and says so.
func writeVersion(w io.Writer, bi *debug.BuildInfo, ok bool) error {
	if !ok || bi == nil {
		_, err := io.WriteString(w, "freshtoken: no build information in this binary\n")
		return err
	}
	version := bi.Main.Version
	if version == "" {
		version = "(devel)"
	}
	path := bi.Main.Path
	if path == "" {
		path = bi.Path
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	revision := settings["vcs.revision"]
	switch {
	case revision == "":
		revision = "unknown (built without VCS information: outside a git checkout, or with -buildvcs=false)"
	case settings["vcs.modified"] == "true":
		revision += " (with uncommitted changes)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "freshtoken %s\n", version)
	fmt.Fprintf(&b, "module:   %s\n", path)
	fmt.Fprintf(&b, "revision: %s\n", revision)
	if t := settings["vcs.time"]; t != "" {
		fmt.Fprintf(&b, "commit:   %s\n", t)
	}
	fmt.Fprintf(&b, "go:       %s\n", bi.GoVersion)
	_, err := io.WriteString(w, b.String())
	return err
}
