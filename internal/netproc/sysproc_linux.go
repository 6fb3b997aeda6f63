package netproc

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal has the kernel kill the command if the process
// that started it dies without killing it.
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
