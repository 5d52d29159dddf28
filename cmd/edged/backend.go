package main

import (
	"fmt"
	"io"
	"time"

	"github.com/edged/edged/internal/runtime"
)

// backendFlagHelp documents --backend for the subcommands that take it.
const backendFlagHelp = "backend: int8 (pure-Go kernels, bit-exact with TFLM), armnn (Arm NN, in edged-armnn builds; falls back to int8\nwith the reason when it cannot run the model) or auto (measure both at load, keep the faster one that agrees)"

// openBackend opens a model on the backend asked for, saying on stderr
// (when not nil) what was chosen when it was not simply int8.
func openBackend(m *runtime.Model, name string, opts *runtime.Options, stderr io.Writer, prefix string) (*runtime.Selection, error) {
	if err := runtime.CheckBackendName(name); err != nil {
		return nil, usagef("--backend: %v", err)
	}
	sel, err := runtime.OpenBackend(m, runtime.SelectOptions{Backend: name, Interpreter: opts})
	if err != nil {
		return nil, err
	}
	if stderr == nil {
		return sel, nil
	}
	if sel.Requested != runtime.BackendInt8 && (sel.Fallback != "" || sel.Measured || sel.Delegate != "") {
		fmt.Fprintf(stderr, "%s: backend %s\n", prefix, sel.Reason)
	}
	if sel.Measured {
		fmt.Fprintf(stderr, "%s: measured %d invokes each on random inputs: int8 median %s, %s median %s, max difference %d steps (float %.3g)\n",
			prefix, sel.Trials, micros(sel.Int8Time), sel.Delegate, micros(sel.DelegateTime), sel.MaxSteps, sel.MaxFloatDiff)
	}
	return sel, nil
}

func micros(d time.Duration) string { return fmt.Sprintf("%.1f us", float64(d.Nanoseconds())/1e3) }
