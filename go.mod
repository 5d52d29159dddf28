module github.com/edged/edged

go 1.26.0

require (
	github.com/google/flatbuffers v2.0.8+incompatible
	golang.org/x/image v0.48.0
)

require golang.org/x/sys v0.50.0 // indirect
