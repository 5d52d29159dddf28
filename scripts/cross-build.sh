#!/usr/bin/env bash
# Cross-compiles edged into one static, CGO-free binary per target:
#   dist/edged-linux-arm64      Raspberry Pi 3/4/5, Zero 2 W with a 64-bit OS
#   dist/edged-linux-armv7      Raspberry Pi 2/3/4 with a 32-bit OS
#   dist/edged-linux-armv6      Raspberry Pi 1, Zero, Zero W
#   dist/edged-linux-amd64      x86-64 Linux (development, simulators)
# and dist/SHA256SUMS. Version and commit are stamped into the binary and
# printed by `edged version`.
#
# Separately, on request, the Arm NN build (cgo, -tags armnn, dynamically
# linked against Debian's libarmnn 20.08):
#   dist/edged-armnn-linux-arm64  64-bit Pi OS / Debian arm64 with
#                                 libarmnntfliteparser22 and
#                                 libarmnn-cpuacc-backend22 installed
# built with Debian's aarch64-linux-gnu-g++ against arm64 Arm NN packages
# unpacked into build/sysroot-arm64 (scripts/armnn-sysroot.sh).
#
#   scripts/cross-build.sh              # the four static targets
#   scripts/cross-build.sh arm64        # some targets
#   scripts/cross-build.sh armnn-arm64  # the Arm NN build
#   VERSION=v0.2.0 scripts/cross-build.sh
set -euo pipefail
cd "$(dirname "$0")/.."

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(arm64 armv7 armv6 amd64)

version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
commit=${COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
ldflags="-s -w -X main.version=${version} -X main.commit=${commit}"

# build_armnn_arm64 cross-compiles the cgo Arm NN build for arm64.
build_armnn_arm64() {
	local cxx=aarch64-linux-gnu-g++
	if ! command -v "$cxx" >/dev/null; then
		echo "cross-build: $cxx not found (apt-get install g++-aarch64-linux-gnu)" >&2
		exit 1
	fi
	scripts/armnn-sysroot.sh
	local out=dist/edged-armnn-linux-arm64
	echo "cross-build: $out (cgo, -tags armnn)"
	(
		. scripts/armnn-cross-env.sh
		go build -tags armnn -trimpath -ldflags "$ldflags" -o "$out" ./cmd/edged
	)
}

mkdir -p dist
for target in "${targets[@]}"; do
	goarm=""
	case "$target" in
	arm64) goarch=arm64 ;;
	armv7) goarch=arm goarm=7 ;;
	armv6) goarch=arm goarm=6 ;;
	amd64) goarch=amd64 ;;
	armnn-arm64)
		build_armnn_arm64
		continue
		;;
	*) echo "cross-build: unknown target $target (arm64, armv7, armv6, amd64, armnn-arm64)" >&2; exit 2 ;;
	esac
	out="dist/edged-linux-${target}"
	echo "cross-build: $out"
	CGO_ENABLED=0 GOOS=linux GOARCH=$goarch GOARM=$goarm \
		go build -trimpath -ldflags "$ldflags" -o "$out" ./cmd/edged
done
(cd dist && sha256sum edged-*linux-* > SHA256SUMS)
ls -l dist
