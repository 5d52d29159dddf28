//go:build armnn

package main

// testBuildTags are the build tags of the edged the tests build and run.
var testBuildTags = []string{"armnn"}
