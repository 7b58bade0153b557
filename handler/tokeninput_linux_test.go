package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair: what the test types goes into the controller, and
// the program reads the terminal.
func openPTY(t *testing.T) (controller, terminal *os.File) {
	t.Helper()
	controller, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { controller.Close() })
	fd := int(controller.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock the pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("name the pseudo-terminal: %v", err)
	}
	terminal, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open the pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { terminal.Close() })
	return controller, terminal
}

// waitEchoOff waits until the program has turned echo off on the terminal, so that what the
// test types next is what a person would type at the prompt.
func waitEchoOff(t *testing.T, terminal *os.File) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // guards against a hang; not measured
	for {
		tio, err := unix.IoctlGetTermios(int(terminal.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatalf("read the terminal's settings: %v", err)
		}
		if tio.Lflag&unix.ECHO == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("readRefreshToken never turned echo off")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestReadRefreshTokenFromTerminal(t *testing.T) {
	const token = "1//0gTypedAtThePrompt"
	tests := []struct {
		name    string
		typed   string
		want    string
		wantErr string
	}{
		{"typed", "  " + token + " \n", token, ""},
		{"empty", "\n", "", "no refresh token on standard input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			controller, terminal := openPTY(t)
			// Everything the terminal shows: read until the terminal closes (EIO).
			shown := make(chan []byte, 1)
			go func() {
				b, _ := io.ReadAll(controller)
				shown <- b
			}()
			type result struct {
				token string
				err   error
			}
			done := make(chan result, 1)
			var prompt bytes.Buffer
			go func() {
				tok, err := readRefreshToken(terminal, &prompt, "strava")
				done <- result{tok, err}
			}()
			waitEchoOff(t, terminal)
			if _, err := io.WriteString(controller, tt.typed); err != nil {
				t.Fatal(err)
			}
			r := <-done

			if tt.wantErr != "" {
				if r.err == nil || !strings.Contains(r.err.Error(), tt.wantErr) {
					t.Errorf("error %v; want one containing %q", r.err, tt.wantErr)
				}
			} else if r.err != nil || r.token != tt.want {
				t.Errorf("readRefreshToken = %q, %v; want %q", r.token, r.err, tt.want)
			}
			if got := prompt.String(); !strings.Contains(got, "Refresh token for strava (input hidden): ") {
				t.Errorf("prompt %q; want one naming the connection and saying the input is hidden", got)
			}

			tio, err := unix.IoctlGetTermios(int(terminal.Fd()), unix.TCGETS)
			if err != nil {
				t.Fatal(err)
			}
			if tio.Lflag&unix.ECHO == 0 {
				t.Error("echo is still off after the token was read; want the terminal restored")
			}
			terminal.Close()
			if got := <-shown; strings.Contains(string(got), "TypedAtThePrompt") {
				t.Errorf("the terminal echoed the token: %q", got)
			}
		})
	}
}
