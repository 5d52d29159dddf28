//go:build !linux

package testenv

import "os/exec"

// DieWithParent is a no-op where the kernel cannot signal a child when its
// parent dies.
func DieWithParent(cmd *exec.Cmd) {}
