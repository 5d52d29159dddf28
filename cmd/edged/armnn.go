//go:build armnn

package main

// The Arm NN delegate registers itself with the runtime: builds with
// -tags armnn (the edged-armnn binaries) can run models on it.
import _ "github.com/edged/edged/internal/runtime/armnn"
