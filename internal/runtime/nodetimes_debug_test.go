package runtime_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/edged/edged/internal/runtime"
)

func TestNodeTimesDebug(t *testing.T) {
	name := os.Getenv("NODETIMES")
	if name == "" {
		t.Skip()
	}
	m, _ := runtime.LoadModelFile("/work/shared/testdata/models/" + name + ".tflite")
	it, _ := runtime.NewInterpreter(m, nil)
	runs := 200
	if r := os.Getenv("NODERUNS"); r != "" {
		fmt.Sscan(r, &runs)
	}
	d := runtime.NodeTimes(it, runs)
	for i, n := range it.Nodes() {
		in := it.Tensor(n.Op.Inputs[0])
		out := it.Tensor(n.Op.Outputs[0])
		us := float64(d[i].Microseconds()) / float64(runs)
		fmt.Printf("%3d %-18s %-16v %-16v macs %9d  %7.1f us  %6.2f GMAC/s\n", i, n.Op.Code.Name(), in.Shape, out.Shape, n.MACs, us, float64(n.MACs)/us/1e3)
	}
}
