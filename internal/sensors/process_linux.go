//go:build linux

package sensors

import (
	"os/exec"

	"golang.org/x/sys/unix"
)

// awaitExit blocks until the command has exited, without reaping it: its
// process (a zombie until cmd.Wait) keeps its pid and so its process
// group id reserved, and the group can be signalled safely. It reports
// whether that is so.
func awaitExit(cmd *exec.Cmd) bool {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return err == nil
		}
	}
}
