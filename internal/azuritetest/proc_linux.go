package azuritetest

import "syscall"

// setParentDeathSignal has the kernel kill Azurite if the test binary dies without Stop (a panic,
// a test time-out). Linux sends it when the thread that started Azurite exits; Go keeps its
// threads for the life of the process unless a goroutine exits while locked to one.
func setParentDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
