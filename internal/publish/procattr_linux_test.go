package publish

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes a child process (mosquitto, a helper) get SIGKILL if
// the test binary dies first, so none outlives a crashed test run.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
