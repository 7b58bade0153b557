package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/term"
)

// maxRefreshTokenSize bounds what readRefreshToken reads: refresh tokens are at most a few KiB.
const maxRefreshTokenSize = 16 << 10

// terminalLineLimit is the longest line a Linux terminal passes in canonical mode (4096 bytes
// with the newline): a longer paste is cut there.
const terminalLineLimit = 4095

// fileDescriptor is what a terminal on stdin offers (*os.File).
type fileDescriptor interface{ Fd() uintptr }

// readRefreshToken reads the refresh token that `import` stores, from standard input only:
// never an argument or the environment, which other processes can see. When in is a terminal
// it writes a prompt to prompt (stderr, so that stdout stays for results) and reads one line
// without echo; otherwise it reads in to its end. Surrounding white space (and a UTF-8 byte order
// mark) is trimmed. It refuses an empty token, one larger than maxRefreshTokenSize, one with
// white space or other characters that no refresh token holds (RFC 6749 allows printable ASCII),
// such as two lines, and on a terminal one that may have been cut at the line limit. Errors
// never quote the input.
func readRefreshToken(in io.Reader, prompt io.Writer, connection string) (string, error) {
	var data []byte
	if f, ok := in.(fileDescriptor); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(prompt, "Refresh token for %s (input hidden): ", connection)
		line, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", fmt.Errorf("read the refresh token from the terminal: %w", err)
		}
		if len(line) >= terminalLineLimit {
			return "", fmt.Errorf("the refresh token may have been cut at the terminal's line limit (%d characters): pipe it instead, e.g. freshtoken import %s < token.txt", terminalLineLimit, connection)
		}
		data = line
	} else {
		var err error
		data, err = io.ReadAll(io.LimitReader(in, maxRefreshTokenSize+1))
		if err != nil {
			return "", fmt.Errorf("read the refresh token from standard input: %w", err)
		}
	}
	if len(data) > maxRefreshTokenSize {
		return "", fmt.Errorf("standard input holds more than %d bytes; give the refresh token alone", maxRefreshTokenSize)
	}
	token := strings.TrimSpace(string(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))))
	if token == "" {
		return "", fmt.Errorf("no refresh token on standard input: pipe it in, e.g. freshtoken import %s < token.txt", connection)
	}
	if err := checkRefreshToken(token); err != nil {
		return "", err
	}
	return token, nil
}

// checkRefreshToken refuses what cannot be one refresh token, without quoting it.
func checkRefreshToken(token string) error {
	if strings.IndexByte(token, 0) >= 0 {
		return errors.New("the refresh token holds NUL bytes: is the file UTF-16 (as PowerShell 5 writes with >)? Save it as UTF-8 or ASCII")
	}
	for i := 0; i < len(token); i++ {
		switch c := token[i]; {
		case c == '\n' || c == '\r':
			return errors.New("standard input holds more than one line; give the refresh token alone")
		case c == ' ' || c == '\t':
			return errors.New("the refresh token holds white space; give the token alone, without a name or quotes around it")
		case c < 0x20 || c > 0x7e:
			return fmt.Errorf("the refresh token holds a character that is not printable ASCII (at position %d); refresh tokens never do", i+1)
		}
	}
	if len(token) >= 2 && (token[0] == '"' && token[len(token)-1] == '"' || token[0] == '\'' && token[len(token)-1] == '\'') {
		return errors.New("the refresh token is in quotes; give it without them (az ... -o tsv prints it bare)")
	}
	return nil
}
