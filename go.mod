module github.com/edged/edged

go 1.26.0

require (
	github.com/google/flatbuffers v2.0.8+incompatible
	go.uber.org/goleak v1.3.0
	go.uber.org/zap v1.28.0
	golang.org/x/image v0.48.0
	golang.org/x/sys v0.50.0
	periph.io/x/conn/v3 v3.7.3
	periph.io/x/host/v3 v3.8.5
)

require (
	github.com/jonboulle/clockwork v0.5.0 // indirect
	go.uber.org/multierr v1.10.0 // indirect
)
