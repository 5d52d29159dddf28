package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/edged/edged/internal/runtime"
)

type inspectTensor struct {
	Index       int       `json:"index"`
	Name        string    `json:"name"`
	DType       string    `json:"dtype"`
	Shape       []int     `json:"shape"`
	Bytes       int       `json:"bytes"`
	Kind        string    `json:"kind"` // input, output, constant, variable, activation
	Scale       []float32 `json:"scale,omitempty"`
	ZeroPoint   []int64   `json:"zero_point,omitempty"`
	QuantizedAx *int      `json:"quantized_dimension,omitempty"`
}

type inspectOp struct {
	Index   int    `json:"index"`
	Op      string `json:"op"`
	Version int    `json:"version"`
	Inputs  []int  `json:"inputs"`
	Outputs []int  `json:"outputs"`
	MACs    int64  `json:"macs"`
}

type inspectReport struct {
	Model       string          `json:"model"`
	Bytes       int             `json:"bytes"`
	Description string          `json:"description,omitempty"`
	Subgraphs   int             `json:"subgraphs"`
	Inputs      []int           `json:"inputs"`
	Outputs     []int           `json:"outputs"`
	Operators   []inspectOp     `json:"operators"`
	Tensors     []inspectTensor `json:"tensors"`
	ArenaBytes  int             `json:"arena_bytes"`
	MACs        int64           `json:"macs"`
	Metadata    []string        `json:"metadata,omitempty"`
	Error       string          `json:"prepare_error,omitempty"`
}

func runInspect(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("inspect", "--model M [--json]", stderr)
	modelPath := fs.String("model", "", "the .tflite model to describe (required)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *modelPath == "" {
		return usagef("%v", errNoModel)
	}
	m, err := runtime.LoadModelFile(*modelPath)
	if err != nil {
		return err
	}
	g := m.Subgraphs[0]
	rep := inspectReport{Model: *modelPath, Bytes: m.Size, Description: m.Description, Subgraphs: len(m.Subgraphs), Inputs: g.Inputs, Outputs: g.Outputs}
	for _, md := range m.Metadata {
		rep.Metadata = append(rep.Metadata, fmt.Sprintf("%s (%d bytes)", md.Name, len(md.Data)))
	}
	// A model edged cannot run is still described; the reason is reported.
	it, prepErr := runtime.NewInterpreter(m, nil)
	macs := map[int]int64{}
	if prepErr != nil {
		rep.Error = prepErr.Error()
	} else {
		rep.ArenaBytes = it.ArenaBytes()
		rep.MACs = it.MACs()
		for _, n := range it.Nodes() {
			macs[n.Op.Index] = n.MACs
		}
	}
	for _, op := range g.Operators {
		rep.Operators = append(rep.Operators, inspectOp{Index: op.Index, Op: op.Code.Name(), Version: op.Code.Version, Inputs: op.Inputs, Outputs: op.Outputs, MACs: macs[op.Index]})
	}
	kinds := map[int]string{}
	for _, i := range g.Inputs {
		kinds[i] = "input"
	}
	for _, i := range g.Outputs {
		kinds[i] = "output"
	}
	for i := range g.Tensors {
		ti := &g.Tensors[i]
		shape := ti.Shape
		if it != nil {
			shape = it.Tensor(i).Shape
		}
		t := inspectTensor{Index: i, Name: ti.Name, DType: ti.Type.String(), Shape: shape, Bytes: runtime.NumElements(shape) * ti.Type.Size()}
		switch {
		case kinds[i] != "":
			t.Kind = kinds[i]
		case ti.IsVariable:
			t.Kind = "variable"
		case ti.Data != nil:
			t.Kind = "constant"
		default:
			t.Kind = "activation"
		}
		if q := ti.Quant; q.Quantized() {
			t.Scale, t.ZeroPoint = q.Scale, q.ZeroPoint
			if q.PerChannel() {
				qd := q.QuantizedDimension
				t.QuantizedAx = &qd
			}
		}
		rep.Tensors = append(rep.Tensors, t)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printInspect(stdout, &rep)
	if prepErr != nil {
		return fmt.Errorf("the model cannot run: %w", prepErr)
	}
	return nil
}

func printInspect(w io.Writer, r *inspectReport) {
	fmt.Fprintf(w, "model      %s (%d bytes, %d subgraph(s))\n", r.Model, r.Bytes, r.Subgraphs)
	if r.Description != "" {
		fmt.Fprintf(w, "described  %s\n", r.Description)
	}
	for _, md := range r.Metadata {
		fmt.Fprintf(w, "metadata   %s\n", md)
	}
	io := func(label string, idx []int) {
		for _, i := range idx {
			t := r.Tensors[i]
			fmt.Fprintf(w, "%-10s %d %q %s%s%s\n", label, i, t.Name, t.DType, runtime.FormatShape(t.Shape), quantString(t))
		}
	}
	io("input", r.Inputs)
	io("output", r.Outputs)
	if r.Error == "" {
		fmt.Fprintf(w, "arena      %d bytes planned\n", r.ArenaBytes)
		fmt.Fprintf(w, "MACs       %d per invoke\n", r.MACs)
	}
	fmt.Fprintf(w, "\noperators (%d):\n", len(r.Operators))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  #\top\tinputs\toutputs\tMACs")
	for _, op := range r.Operators {
		fmt.Fprintf(tw, "  %d\t%s v%d\t%s\t%s\t%d\n", op.Index, op.Op, op.Version, tensorRefs(r, op.Inputs), tensorRefs(r, op.Outputs), op.MACs)
	}
	tw.Flush()
	fmt.Fprintf(w, "\ntensors (%d):\n", len(r.Tensors))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  #\tkind\ttype\tshape\tbytes\tquantization\tname")
	for _, t := range r.Tensors {
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%d\t%s\t%s\n", t.Index, t.Kind, t.DType, runtime.FormatShape(t.Shape), t.Bytes, strings.TrimSpace(quantString(t)), t.Name)
	}
	tw.Flush()
}

func tensorRefs(r *inspectReport, idx []int) string {
	parts := make([]string, len(idx))
	for i, t := range idx {
		if t < 0 {
			parts[i] = "-"
			continue
		}
		parts[i] = fmt.Sprintf("%d:%s%s", t, r.Tensors[t].DType, runtime.FormatShape(r.Tensors[t].Shape))
	}
	return strings.Join(parts, " ")
}

func quantString(t inspectTensor) string {
	switch {
	case len(t.Scale) == 0:
		return ""
	case len(t.Scale) == 1:
		return fmt.Sprintf(" scale=%.9g zp=%d", t.Scale[0], t.ZeroPoint[0])
	default:
		return fmt.Sprintf(" per-channel(%d along dim %d)", len(t.Scale), *t.QuantizedAx)
	}
}
