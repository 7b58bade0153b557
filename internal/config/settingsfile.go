package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// maxSettingsFileSize bounds what ReadSettingsFile reads: a local.settings.json is a few KiB.
const maxSettingsFileSize = 1 << 20

// SettingsFile is the Values of a local.settings.json, for running freshtoken outside the
// Functions host (`freshtoken --settings FILE <subcommand>`). The file's other sections (Host,
// ConnectionStrings) are not read.
type SettingsFile struct {
	// Path is the file as given, for messages.
	Path string
	// Values are the settings by name, exactly as spelled in the file.
	Values map[string]string
}

// ReadSettingsFile reads a local.settings.json: {"IsEncrypted":false,"Values":{...}}. String
// values are taken as they are; numbers and booleans as their JSON text (as func start does);
// null as unset. It refuses a file with "IsEncrypted": true, which only func can decrypt, and
// values that are objects or arrays. Errors name the file and the setting, and never quote a
// value or the file's text, which hold secrets.
func ReadSettingsFile(path string) (*SettingsFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read settings file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSettingsFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read settings file %s: %w", path, err)
	}
	if len(data) > maxSettingsFileSize {
		return nil, fmt.Errorf("read settings file %s: larger than %d bytes; is it a local.settings.json?", path, maxSettingsFileSize)
	}
	values, err := parseSettingsFile(data)
	if err != nil {
		return nil, fmt.Errorf("read settings file %s: %w", path, err)
	}
	return &SettingsFile{Path: path, Values: values}, nil
}

// parseSettingsFile parses the contents of a local.settings.json; see ReadSettingsFile.
func parseSettingsFile(data []byte) (map[string]string, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // editors on Windows may add a BOM
	var file struct {
		IsEncrypted json.RawMessage
		Values      map[string]json.RawMessage
	}
	if err := json.Unmarshal(data, &file); err != nil {
		return nil, jsonProblem(data, err)
	}
	switch v := string(bytes.TrimSpace(file.IsEncrypted)); v {
	case "", "null", "false":
	case "true":
		return nil, errors.New(`"IsEncrypted" is true: the values are encrypted for this machine by func; ` +
			"decrypt them with `func settings decrypt`, or give a file with plain values")
	default:
		return nil, errors.New(`"IsEncrypted" must be true or false`)
	}
	if file.Values == nil {
		return nil, errors.New(`no "Values" object: a local.settings.json holds {"IsEncrypted":false,"Values":{"NAME":"value",...}}`)
	}
	values := make(map[string]string, len(file.Values))
	var bad []string
	for name, raw := range file.Values {
		raw = bytes.TrimSpace(raw)
		switch {
		case name == "":
			return nil, errors.New(`"Values" has a setting with an empty name`)
		case len(raw) == 0 || string(raw) == "null":
			continue
		case raw[0] == '"':
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return nil, fmt.Errorf("Values.%s: not a valid JSON string", name)
			}
			values[name] = s
		case raw[0] == '{' || raw[0] == '[':
			bad = append(bad, name)
		default: // a number or a boolean, already checked by Unmarshal
			values[name] = string(raw)
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		return nil, fmt.Errorf("Values: %q must be strings, not objects or arrays", bad)
	}
	return values, nil
}

// jsonProblem describes a JSON error by position and kind, without the snippet of the file
// that encoding/json quotes (it can be part of a secret).
func jsonProblem(data []byte, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		line, col := position(data, syn.Offset)
		return fmt.Errorf("not valid JSON at line %d, column %d", line, col)
	case errors.As(err, &typ):
		where := "the top level"
		if typ.Field != "" {
			where = strconv.Quote(typ.Field)
		}
		kind, _, _ := strings.Cut(typ.Value, " ") // "number 5": keep the kind, drop the value
		return fmt.Errorf("%s must be a JSON %s, found a JSON %s", where, kindOf(typ.Type.Kind().String()), kind)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("not valid JSON: the file ends too early")
	default:
		return errors.New("not valid JSON")
	}
}

func kindOf(goKind string) string {
	switch goKind {
	case "struct", "map":
		return "object"
	case "slice":
		return "array"
	}
	return goKind
}

// position turns a byte offset into a 1-based line and column.
func position(data []byte, offset int64) (line, col int) {
	offset = min(max(offset, 0), int64(len(data)))
	before := data[:offset]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(offset) - (bytes.LastIndexByte(before, '\n') + 1)
	if col == 0 {
		col = 1
	}
	return line, col
}

// Getenv returns the settings as a getenv-style func for Load: the environment's value when it
// is not empty, else the file's. The environment wins as under func start, which keeps a
// variable already set over local.settings.json; so one run can override one setting
// (`LOG_LEVEL=debug freshtoken --settings local.settings.json status`). Overridden names those
// settings so that the caller can say so. An empty environment value falls through to the file,
// since Load treats empty as unset.
func (f *SettingsFile) Getenv(environ func(string) string) func(string) string {
	return func(name string) string {
		if v := environ(name); v != "" {
			return v
		}
		return f.Values[name]
	}
}

// Overridden returns, sorted, the names of the file's settings that the environment replaces
// with a different, non-empty value, for a warning that names them (never their values).
func (f *SettingsFile) Overridden(environ func(string) string) []string {
	var names []string
	for name, v := range f.Values {
		if e := environ(name); e != "" && e != v {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}
