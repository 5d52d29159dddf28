# edged — common tasks. `make help` lists them.

GO        ?= go
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
FUZZTIME  ?= 10m
TESTDATA  ?= $(or $(EDGED_TESTDATA),../shared/testdata)

.PHONY: help build build-armnn test unit emulated lint lint-armnn test-armnn fmt generate check-generated cross cross-armnn deb bench fuzz clean

help:
	@echo "make build      build ./edged for this machine"
	@echo "make test       lint, all tests, and the runtime's tests under qemu (arm64, armv7, armv6)"
	@echo "make unit       go test ./... only"
	@echo "make emulated   the runtime's tests under qemu-user only"
	@echo "make lint       gofmt, go vet, staticcheck"
	@echo "make generate   regenerate the TFLite schema reader (needs flatc 2.0.8)"
	@echo "make cross      static binaries for arm64, armv7, armv6, amd64 in dist/"
	@echo "make build-armnn   ./edged-armnn: this machine, with the Arm NN delegate (cgo; needs libarmnntfliteparser-dev)"
	@echo "make test-armnn    the Arm NN delegate's tests and lint (-tags armnn)"
	@echo "make cross-armnn   dist/edged-armnn-linux-arm64 (cgo, Debian's aarch64 cross compiler and arm64 Arm NN)"
	@echo "make deb        those binaries as .deb packages in dist/"
	@echo "make bench      kernel benchmarks and edged bench on the reference models"
	@echo "make fuzz       fuzz the model reader for FUZZTIME (default 10m)"

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o edged ./cmd/edged

build-armnn:
	CGO_ENABLED=1 $(GO) build -tags armnn -trimpath -ldflags "$(LDFLAGS)" -o edged-armnn ./cmd/edged

test: lint unit emulated

unit:
	$(GO) test -count=1 -timeout 20m ./...

emulated:
	EDGED_EMULATION=1 $(GO) test -count=1 -v -run TestUnderEmulation ./internal/archtest

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

lint-armnn:
	$(GO) vet -tags armnn ./...
	$(STATICCHECK) -tags armnn ./...

test-armnn: lint-armnn
	$(GO) test -count=1 -tags armnn ./internal/runtime/armnn/... ./cmd/edged/

fmt:
	gofmt -w .

generate:
	$(GO) generate ./internal/runtime/tflite

# Regenerates the schema reader and fails if the committed files differ.
check-generated: generate
	git diff --exit-code -- internal/runtime/tflite

cross:
	VERSION=$(VERSION) COMMIT=$(COMMIT) scripts/cross-build.sh

cross-armnn:
	VERSION=$(VERSION) COMMIT=$(COMMIT) scripts/cross-build.sh armnn-arm64

deb:
	VERSION=$(VERSION) COMMIT=$(COMMIT) scripts/package-deb.sh

bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./internal/...
	EDGED_TESTDATA=$(TESTDATA) scripts/bench-models.sh ./edged

fuzz:
	$(GO) test ./internal/runtime -run '^$$' -fuzz FuzzLoadModel -fuzztime $(FUZZTIME)

clean:
	rm -rf dist edged edged-armnn build
