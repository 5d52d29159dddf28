package runtime

import (
	"context"
	"fmt"
	"os"
	goruntime "runtime"
	"strings"
	"unsafe"
)

// DefaultMaxArenaBytes bounds the arena an interpreter may allocate unless
// Options say otherwise: well above any model edged is meant for (YOLOv8n at
// 640×640 plans about 5 MB) and well below a Raspberry Pi's memory.
const DefaultMaxArenaBytes = 512 << 20

// Options configure an interpreter.
type Options struct {
	// MaxArenaBytes bounds the planned arena; 0 means DefaultMaxArenaBytes.
	MaxArenaBytes int
	// PreserveAllTensors gives every tensor memory of its own for the whole
	// invocation, so intermediate results can be read afterwards (for
	// debugging and layer-by-layer comparison); it costs arena space.
	PreserveAllTensors bool
	// Threads is the number of goroutines that share the work of large
	// layers (convolutions, fully connected layers); 0 or 1 runs every
	// layer on the goroutine that calls Invoke. The interpreter starts
	// Threads-1 worker goroutines once; Close stops them.
	Threads int
	// ReferenceKernels runs every operator with its plain reference kernel
	// (the specification the optimized kernels are tested against) instead
	// of the optimized kernels chosen in Prepare. The environment variable
	// EDGED_KERNELS=reference does the same for every interpreter.
	ReferenceKernels bool

	// pureGo makes the optimized kernels use their pure-Go micro-kernels
	// instead of SIMD assembly (tests use it to test both).
	pureGo bool
}

// ReferenceKernelsEnv is the environment variable that, set to "reference",
// forces the reference kernels in every interpreter.
const ReferenceKernelsEnv = "EDGED_KERNELS"

// optimizedKernels reports whether interpreters built with opts may use
// optimized kernels.
func optimizedKernels(opts *Options) bool {
	return !opts.ReferenceKernels && os.Getenv(ReferenceKernelsEnv) != "reference"
}

type node struct {
	op      *Operator
	kernel  Kernel
	scratch []*Scratch
}

// Interpreter runs subgraph 0 of a model. It owns one arena and one kernel
// per operator; several interpreters of one model run independently, each
// on its own goroutine. An Interpreter itself is not safe for concurrent
// use.
type Interpreter struct {
	model   *Model
	graph   *Subgraph
	tensors []*Tensor
	nodes   []node
	inputs  []*Tensor
	outputs []*Tensor

	arena      []byte
	arenaBytes int // planned part: activations and scratch
	stateBytes int // variable tensors

	optimized bool
	simd      simdKind // the micro-kernels the optimized kernels use
	pool      *workerPool
	// workspace is per-thread working memory of the optimized kernels
	// (packed input tiles, accumulator rows): one buffer per thread, as
	// large as the largest any operator asked for, allocated once.
	workspace *workspace
}

// workspace holds one buffer per pool thread.
type workspace struct {
	size int
	bufs [][]byte
}

// get returns thread w's buffer.
func (ws *workspace) get(w int) []byte { return ws.bufs[w] }

// NewInterpreter prepares every operator of the model's first subgraph,
// plans the arena and allocates it. Unsupported operators or types, and
// inconsistent shapes, are reported here, naming the operator.
func NewInterpreter(m *Model, opts *Options) (*Interpreter, error) {
	if opts == nil {
		opts = &Options{}
	}
	maxArena := opts.MaxArenaBytes
	if maxArena <= 0 {
		maxArena = DefaultMaxArenaBytes
	}
	g := m.Subgraphs[0]
	it := &Interpreter{model: m, graph: g, tensors: make([]*Tensor, len(g.Tensors)),
		optimized: optimizedKernels(opts), simd: cpuSIMD, workspace: &workspace{}}
	if opts.pureGo {
		it.simd = simdNone
	}
	if opts.Threads > 1 {
		it.pool = newWorkerPool(opts.Threads)
	}
	for i := range g.Tensors {
		ti := &g.Tensors[i]
		it.tensors[i] = &Tensor{
			Index: i, Name: ti.Name, Type: ti.Type, Shape: append([]int(nil), ti.Shape...),
			Quant: ti.Quant, Const: ti.Data != nil && !ti.IsVariable, Variable: ti.IsVariable,
		}
		if !ti.IsVariable {
			it.tensors[i].data = ti.Data
		}
	}
	for _, in := range g.Inputs {
		it.inputs = append(it.inputs, it.tensors[in])
	}
	for _, out := range g.Outputs {
		it.outputs = append(it.outputs, it.tensors[out])
	}

	// Every operator must be known before any is prepared, so a model with
	// several unsupported operators lists them all.
	var unsupported []string
	it.nodes = make([]node, len(g.Operators))
	for i := range g.Operators {
		op := &g.Operators[i]
		reg, err := lookup(op.Code)
		if err != nil {
			unsupported = append(unsupported, it.describe(op)+": "+err.Error())
			continue
		}
		it.nodes[i] = node{op: op, kernel: reg.New()}
	}
	if len(unsupported) > 0 {
		return nil, fmt.Errorf("model cannot run:\n  %s", strings.Join(unsupported, "\n  "))
	}
	for i := range it.nodes {
		n := &it.nodes[i]
		c := &PrepareContext{it: it, op: n.op, node: n}
		if err := n.kernel.Prepare(c); err != nil {
			it.pool.close()
			return nil, fmt.Errorf("%s: %w", it.describe(n.op), err)
		}
		n.scratch = c.scratch
	}
	if err := it.allocate(maxArena, opts.PreserveAllTensors); err != nil {
		it.pool.close()
		return nil, err
	}
	it.workspace.bufs = make([][]byte, it.pool.Threads())
	for i := range it.workspace.bufs {
		it.workspace.bufs[i] = alignedBytes(it.workspace.size)
	}
	if it.pool != nil {
		// The workers reference the pool, not the interpreter: an
		// interpreter nobody closes still stops them when it is collected.
		goruntime.AddCleanup(it, func(p *workerPool) { p.close() }, it.pool)
	}
	it.Reset()
	return it, nil
}

// Close stops the interpreter's worker goroutines (if it has any). The
// interpreter must not be invoked afterwards. It never fails; the error is
// the Backend interface's.
func (it *Interpreter) Close() error {
	it.pool.close()
	return nil
}

// Threads is the number of goroutines that run large layers.
func (it *Interpreter) Threads() int { return it.pool.Threads() }

// OptimizedKernels reports whether operators may run optimized kernels
// (false when reference kernels are forced).
func (it *Interpreter) OptimizedKernels() bool { return it.optimized }

// WorkspaceBytes is the optimized kernels' working memory outside the arena,
// all threads together.
func (it *Interpreter) WorkspaceBytes() int { return it.workspace.size * len(it.workspace.bufs) }

// describe names an operator with its types and shapes, for errors.
func (it *Interpreter) describe(op *Operator) string {
	var b strings.Builder
	fmt.Fprintf(&b, "operator %d %s (inputs", op.Index, op.Code)
	list := func(idx []int) {
		for j, t := range idx {
			if j > 0 {
				b.WriteByte(',')
			}
			if t < 0 {
				b.WriteString(" omitted")
				continue
			}
			tt := it.tensors[t]
			fmt.Fprintf(&b, " %s%s", tt.Type, FormatShape(tt.Shape))
		}
	}
	list(op.Inputs)
	b.WriteString("; outputs")
	list(op.Outputs)
	b.WriteByte(')')
	return b.String()
}

func (it *Interpreter) setShape(t *Tensor, shape []int) error {
	if t.Const {
		return fmt.Errorf("cannot reshape constant tensor %s", t)
	}
	for _, d := range shape {
		if d < 0 {
			return fmt.Errorf("tensor %s: computed shape %s has a negative dimension", t, FormatShape(shape))
		}
	}
	declared := it.graph.Tensors[t.Index].Shape
	if len(declared) > 0 && !shapeMatches(declared, shape) {
		return fmt.Errorf("tensor %d %q: computed output shape %s, the model declares %s", t.Index, t.Name, FormatShape(shape), FormatShape(declared))
	}
	t.Shape = append(t.Shape[:0], shape...)
	return nil
}

// shapeMatches reports whether a computed shape agrees with a declared one,
// where the declaration may leave dimensions unknown (-1).
func shapeMatches(declared, shape []int) bool {
	if len(declared) != len(shape) {
		return false
	}
	for i, d := range declared {
		if d != -1 && d != shape[i] {
			return false
		}
	}
	return true
}

// allocate plans lifetimes and offsets and points every tensor and scratch
// buffer into one arena.
func (it *Interpreter) allocate(maxArena int, preserveAll bool) error {
	g := it.graph
	nOps := len(it.nodes)
	first := make([]int, len(it.tensors))
	last := make([]int, len(it.tensors))
	for i := range first {
		first[i], last[i] = -1, -1
	}
	use := func(t, at int) {
		if first[t] < 0 || at < first[t] {
			first[t] = at
		}
		if at > last[t] {
			last[t] = at
		}
	}
	for _, t := range g.Inputs {
		use(t, 0)
	}
	for i, n := range it.nodes {
		for _, t := range n.op.Inputs {
			if t >= 0 {
				use(t, i)
			}
		}
		for _, t := range n.op.Outputs {
			use(t, i)
		}
	}
	for _, t := range g.Outputs {
		use(t, max(nOps-1, 0))
	}
	if preserveAll {
		for i := range first {
			if first[i] >= 0 {
				first[i], last[i] = 0, max(nOps-1, 0)
			}
		}
	}

	var allocs []*allocation
	owners := map[*allocation]*Tensor{}
	state := 0
	for i, t := range it.tensors {
		if t.Const || first[i] < 0 {
			continue
		}
		for _, d := range t.Shape {
			if d < 0 {
				return fmt.Errorf("tensor %s: dimension left unknown after preparing every operator", t)
			}
		}
		size := t.ByteSize()
		if t.Type.Size() == 0 {
			return fmt.Errorf("tensor %s: type %s cannot be allocated", t, t.Type)
		}
		if t.Variable {
			state += alignUp(size, arenaAlignment)
			continue
		}
		a := &allocation{size: size, first: first[i], last: last[i], id: len(allocs)}
		allocs = append(allocs, a)
		owners[a] = t
	}
	scratchOf := map[*allocation]*Scratch{}
	for i, n := range it.nodes {
		for _, s := range n.scratch {
			a := &allocation{size: s.size, first: i, last: i, id: len(allocs)}
			allocs = append(allocs, a)
			scratchOf[a] = s
		}
	}
	planned := planGreedyBySize(allocs)
	total := planned + state
	if total > maxArena {
		return fmt.Errorf("model needs an arena of %d bytes, more than the limit of %d", total, maxArena)
	}
	it.arena = alignedBytes(total)
	it.arenaBytes, it.stateBytes = planned, state
	for _, a := range allocs {
		b := it.arena[a.offset : a.offset+a.size : a.offset+a.size]
		if t, ok := owners[a]; ok {
			t.data = b
		} else {
			scratchOf[a].Bytes = b
		}
	}
	off := planned
	for i, t := range it.tensors {
		if t.Variable && first[i] >= 0 {
			size := t.ByteSize()
			t.data = it.arena[off : off+size : off+size]
			off += alignUp(size, arenaAlignment)
		}
	}
	return nil
}

func alignedBytes(n int) []byte {
	if n == 0 {
		return nil
	}
	words := make([]uint64, (n+arenaAlignment+7)/8)
	base := unsafe.Pointer(unsafe.SliceData(words))
	pad := (arenaAlignment - int(uintptr(base)%arenaAlignment)) % arenaAlignment
	return unsafe.Slice((*byte)(unsafe.Add(base, pad)), n)
}

// Reset returns every variable tensor to zero (to the zero point for int8,
// as TFLM's ResetVariableTensors does; any constant contents the model gives
// a variable are ignored, as there) and every stateful kernel to its start.
func (it *Interpreter) Reset() {
	for _, t := range it.tensors {
		if !t.Variable || t.data == nil {
			continue
		}
		fill := byte(0)
		if t.Type == Int8 {
			fill = byte(t.ZeroPoint())
		}
		for i := range t.data {
			t.data[i] = fill
		}
	}
	for _, n := range it.nodes {
		if r, ok := n.kernel.(Resetter); ok {
			r.Reset()
		}
	}
}

// Invoke runs every operator once.
func (it *Interpreter) Invoke() error {
	it.pool.begin()
	defer it.pool.end()
	for i := range it.nodes {
		if err := it.nodes[i].kernel.Eval(); err != nil {
			return it.evalError(i, err)
		}
	}
	return nil
}

// InvokeContext runs every operator once, stopping between operators when
// ctx is done.
func (it *Interpreter) InvokeContext(ctx context.Context) error {
	it.pool.begin()
	defer it.pool.end()
	for i := range it.nodes {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := it.nodes[i].kernel.Eval(); err != nil {
			return it.evalError(i, err)
		}
	}
	return nil
}

func (it *Interpreter) evalError(i int, err error) error {
	return fmt.Errorf("%s: %w", it.describe(it.nodes[i].op), err)
}

// Model is the model the interpreter runs.
func (it *Interpreter) Model() *Model { return it.model }

// Inputs are the subgraph's input tensors, in order.
func (it *Interpreter) Inputs() []*Tensor { return it.inputs }

// Outputs are the subgraph's output tensors, in order.
func (it *Interpreter) Outputs() []*Tensor { return it.outputs }

// Tensor returns tensor i of the subgraph.
func (it *Interpreter) Tensor(i int) *Tensor { return it.tensors[i] }

// NumTensors is the number of tensors in the subgraph.
func (it *Interpreter) NumTensors() int { return len(it.tensors) }

// ArenaBytes is the planned arena: activations, scratch and state.
func (it *Interpreter) ArenaBytes() int { return it.arenaBytes + it.stateBytes }

// NodeInfo describes one prepared operator.
type NodeInfo struct {
	Op   *Operator
	MACs int64
}

// Nodes describes the prepared operators in execution order.
func (it *Interpreter) Nodes() []NodeInfo {
	out := make([]NodeInfo, len(it.nodes))
	for i, n := range it.nodes {
		out[i].Op = n.op
		if mc, ok := n.kernel.(MACCounter); ok {
			out[i].MACs = mc.MACs()
		}
	}
	return out
}

// MACs is the number of multiply-accumulates per invocation.
func (it *Interpreter) MACs() int64 {
	var total int64
	for _, n := range it.Nodes() {
		total += n.MACs
	}
	return total
}
