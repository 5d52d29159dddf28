// Package testenv finds what tests need from outside the project: the shared
// test data (models, inputs, golden outputs) and installed programs. Where
// something is missing a test skips with a message, except under CI (the
// environment variable CI is set), where missing test data or programs are
// a failure: CI must run every test.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// ProjectRoot returns the directory holding go.mod.
func ProjectRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testenv: go.mod not found above the working directory")
		}
		dir = parent
	}
}

// SharedDir returns the shared test data directory: $EDGED_TESTDATA, or
// ../shared/testdata beside the project root.
func SharedDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("EDGED_TESTDATA")
	if dir == "" {
		dir = filepath.Join(ProjectRoot(t), "..", "shared", "testdata")
	}
	if _, err := os.Stat(filepath.Join(dir, "models")); err != nil {
		missing(t, "shared test data not found at %s (set EDGED_TESTDATA): %v", dir, err)
	}
	return dir
}

// SharedFile returns the path of a file under the shared test data.
func SharedFile(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(SharedDir(t), rel)
	if _, err := os.Stat(p); err != nil {
		missing(t, "shared test file %s: %v", rel, err)
	}
	return p
}

// Program returns the path of an installed program.
func Program(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, "program %s is not installed: %v", name, err)
	}
	return p
}

// InCI reports whether the tests run under CI.
func InCI() bool { return os.Getenv("CI") != "" }

func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf(format+" (CI is set: this is a failure, not a skip)", args...)
	}
	t.Skipf(format, args...)
}

// SelfCommand runs this test binary again (the helper-process pattern). When
// the tests themselves run under an emulator (internal/archtest sets
// EDGED_TEST_EXEC_WRAPPER to e.g. "qemu-aarch64 -cpu cortex-a72"), the
// child runs under it too.
func SelfCommand(args ...string) *exec.Cmd {
	if w := strings.Fields(os.Getenv("EDGED_TEST_EXEC_WRAPPER")); len(w) > 0 {
		return exec.Command(w[0], append(append(w[1:], os.Args[0]), args...)...)
	}
	return exec.Command(os.Args[0], args...)
}
