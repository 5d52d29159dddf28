package main

import (
	"fmt"
	"io"
	goruntime "runtime"
	"runtime/debug"

	"github.com/edged/edged/internal/runtime"
)

// Set at build time: -ldflags "-X main.version=v0.1.0 -X main.commit=abc123".
var (
	version = "dev"
	commit  = ""
)

func buildInfo() (vers, rev, goarm string) {
	vers, rev = version, commit
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if rev == "" {
					rev = s.Value
				}
			case "GOARM":
				goarm = s.Value
			}
		}
	}
	if rev == "" {
		rev = "unknown"
	}
	return vers, rev, goarm
}

func runVersion(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	vers, rev, goarm := buildInfo()
	arch := goruntime.GOARCH
	if goarm != "" {
		arch += " GOARM=" + goarm
	}
	fmt.Fprintf(stdout, "edged %s\n", vers)
	fmt.Fprintf(stdout, "commit    %s\n", rev)
	fmt.Fprintf(stdout, "platform  %s/%s\n", goruntime.GOOS, arch)
	fmt.Fprintf(stdout, "go        %s\n", goruntime.Version())
	fmt.Fprintf(stdout, "backends  int8 (%d operators; optimized kernels with %s micro-kernels, reference kernels as the spec)\n", len(runtime.SupportedOps()), runtime.KernelBackend())
	delegates := runtime.Delegates()
	for _, d := range delegates {
		desc := d.Name
		if d.Describe != nil {
			desc += " (" + d.Describe() + ")"
		}
		fmt.Fprintf(stdout, "          %s\n", desc)
	}
	if len(delegates) == 0 {
		fmt.Fprintf(stdout, "          (no delegates: Arm NN is in the edged-armnn builds)\n")
	}
	return nil
}

func runOps(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ops", "", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	for _, op := range runtime.SupportedOps() {
		fmt.Fprintf(stdout, "%s (versions 1-%d)\n", op.Name(), op.Version)
	}
	return nil
}
