//go:build unix

package azuritetest

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts Azurite in its own process group, so that Stop reaches every process it
// started, and on Linux has it killed if the test binary dies first.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setParentDeathSignal(cmd.SysProcAttr)
}

// interrupt sends the process group SIGINT, on which Azurite saves its data and exits. It
// reports whether the signal was sent.
func interrupt(cmd *exec.Cmd) bool { return syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) == nil }

// terminate asks the process group to exit.
func terminate(cmd *exec.Cmd) { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }

// kill ends the process group.
func kill(cmd *exec.Cmd) { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
