//go:build !linux

package sensors

import "os/exec"

// awaitExit cannot wait without reaping here; leftover children of the
// command are not killed when it exits (only when the source stops).
func awaitExit(*exec.Cmd) bool { return false }
