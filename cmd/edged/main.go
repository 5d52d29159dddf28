// Command edged runs quantized TensorFlow Lite models on sensor data. Its
// subcommands spot keywords in recordings (kws), classify images or detect
// objects in them (detect), run one model on raw tensors (infer), describe a
// model (inspect), measure it (bench) and say what this binary is (version).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// usageError marks a mistake in how edged was called: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{
	"infer":   {"run a model on raw input tensors and write its outputs", runInfer},
	"run":     {"run the daemon: sensors, models, MQTT (--simulate: no hardware needed)", runRun},
	"kws":     {"spot keywords in WAV files, clip by clip or as one stream", runKWS},
	"detect":  {"classify images or detect objects in them (classifier, SSD, YOLO)", runDetect},
	"inspect": {"describe a model: operators, tensors, quantization, arena, MACs", runInspect},
	"bench":   {"measure a model's invoke latency, memory and allocations", runBench},
	"ops":     {"list the operators this build runs", runOps},
	"version": {"print the version, build and kernel backends", runVersion},

	"finetune": {"teach a model new classes from labelled examples, write a new .tflite", runFinetune},
	"eval":     {"measure a classifier on labelled examples: precision, recall, confusion", runEval},
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "edged: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	err := cmd.run(args[1:], stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	}
	fmt.Fprintf(stderr, "edged %s: %v\n", args[0], err)
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: edged <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'edged <command> -h' for a command's flags.")
}

// newFlagSet makes a flag set whose parse errors are usage errors.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: edged %s %s\n\nflags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	return nil
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
