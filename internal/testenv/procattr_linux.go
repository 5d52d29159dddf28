package testenv

import (
	"os/exec"
	"syscall"
)

// DieWithParent makes a child process (mosquitto, a helper, edged) get
// SIGKILL if the test binary dies first, so none outlives a crashed run.
func DieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
