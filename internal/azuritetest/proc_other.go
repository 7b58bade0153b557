//go:build !unix

package azuritetest

import "os/exec"

func setProcessGroup(*exec.Cmd) {}

// interrupt cannot signal here: Stop then ends Azurite as without Persist.
func interrupt(*exec.Cmd) bool { return false }

func terminate(cmd *exec.Cmd) { _ = cmd.Process.Kill() }

func kill(cmd *exec.Cmd) { _ = cmd.Process.Kill() }
