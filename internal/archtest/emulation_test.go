// Package archtest runs the test suites of edged's packages on the ARM
// architectures edged ships for, under qemu-user: the kernels' integer
// arithmetic, the reader's bounds checks and unsafe typed views, the
// outbox's file format and the V4L2 structures must hold on 32-bit ARM
// (GOARM 6 and 7) and on arm64, not only on the machine the tests were
// written on.
//
// It cross-compiles each package's test binary and runs it under
// qemu-aarch64 (as a Cortex-A72 and as qemu's "max" CPU, for the NEON
// micro-kernels with and without dot-product instructions) or qemu-arm
// (Debian's qemu-user) with -test.short. It takes
// minutes, so it runs when EDGED_EMULATION=1 (make test and CI set it).
package archtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edged/edged/internal/testenv"
)

// allPackages are the packages without cgo: their whole test suites run on
// arm64 and armv7. (cmd/edged's tests build and run the edged binary with
// the host's toolchain, so they test what the other packages test again.)
var allPackages = []string{
	"./internal/quantize", "./internal/runtime", "./internal/runtime/flexbuffers",
	"./internal/pipeline", "./internal/sensors", "./internal/publish",
	"./internal/config", "./internal/daemon", "./internal/finetune",
}

type target struct {
	name     string
	goarch   string
	goarm    string
	qemu     string
	cpu      string
	packages []string
}

// arm64 runs twice: as a Cortex-A72 (Raspberry Pi 4: NEON without the
// dot-product extension) and as qemu's "max" CPU (which reports dotprod, as
// a Pi 5's Cortex-A76 does), so both micro-kernel paths the runtime selects
// by CPU feature are tested.
var targets = []target{
	{"arm64", "arm64", "", "qemu-aarch64", "cortex-a72", allPackages},
	{"arm64-max", "arm64", "", "qemu-aarch64", "max", []string{"./internal/quantize", "./internal/runtime"}},
	{"armv7", "arm", "7", "qemu-arm", "cortex-a7", allPackages},
	// ARMv6 (Pi 1, Zero): the arithmetic, on the oldest core edged supports.
	{"armv6", "arm", "6", "qemu-arm", "arm1176", []string{"./internal/quantize", "./internal/runtime"}},
}

func TestUnderEmulation(t *testing.T) {
	if os.Getenv("EDGED_EMULATION") != "1" {
		t.Skip("set EDGED_EMULATION=1 to run the test suites under qemu-user (make test does)")
	}
	root := testenv.ProjectRoot(t)
	shared := testenv.SharedDir(t)
	if !filepath.IsAbs(shared) {
		shared = filepath.Join(root, shared)
	}
	bin := t.TempDir()
	for _, tg := range targets {
		qemu := testenv.Program(t, tg.qemu)
		for _, pkg := range tg.packages {
			name := tg.name + "/" + strings.TrimPrefix(pkg, "./internal/")
			t.Run(name, func(t *testing.T) {
				exe := filepath.Join(bin, strings.ReplaceAll(name, "/", "-")+".test")
				build := exec.Command("go", "test", "-c", "-o", exe, pkg)
				build.Dir = root
				build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+tg.goarch, "GOARM="+tg.goarm)
				if out, err := build.CombinedOutput(); err != nil {
					t.Fatalf("cross-compiling %s for %s: %v\n%s", pkg, tg.name, err, out)
				}
				start := time.Now()
				run := exec.Command(qemu, "-cpu", tg.cpu, exe, "-test.short", "-test.timeout", "20m")
				run.Dir = filepath.Join(root, pkg)
				run.Env = append(os.Environ(), "EDGED_TESTDATA="+shared, "EDGED_TEST_EXEC_WRAPPER="+qemu+" -cpu "+tg.cpu)
				var out bytes.Buffer
				run.Stdout, run.Stderr = &out, &out
				err := run.Run()
				summary := lastLines(out.String(), 3)
				if err != nil {
					t.Fatalf("%s under %s -cpu %s: %v\n%s", pkg, tg.qemu, tg.cpu, err, out.String())
				}
				fmt.Printf("emulated %-22s %s -cpu %-10s %6.1fs  %s\n", name, tg.qemu, tg.cpu, time.Since(start).Seconds(), summary)
			})
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
