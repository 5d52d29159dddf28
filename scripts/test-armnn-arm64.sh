#!/usr/bin/env bash
# Runs the Arm NN build for arm64 under qemu-aarch64, against the arm64
# Arm NN libraries in the sysroot (CpuAcc, the NEON backend, emulated):
#   1. dist/edged-armnn-linux-arm64 (make cross-armnn): version lists CpuAcc
#      and CpuRef; edged infer --backend armnn on person_detect;
#   2. the delegate's test suite, cross-compiled, with the shared test data.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/armnn-sysroot.sh >/dev/null
. scripts/armnn-cross-env.sh
qemu="qemu-aarch64 -cpu cortex-a72 -L $armnn_sysroot"
testdata=${EDGED_TESTDATA:-$(cd .. && pwd)/shared/testdata}
bin=dist/edged-armnn-linux-arm64
[ -x "$bin" ] || { echo "test-armnn-arm64: $bin missing (make cross-armnn)" >&2; exit 1; }

echo "test-armnn-arm64: $bin version"
out=$($qemu "$bin" version)
echo "$out"
grep -q "compute backends CpuAcc, CpuRef" <<<"$out"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "test-armnn-arm64: edged infer --backend armnn (person_detect, person.png's golden input)"
$qemu "$bin" infer --backend armnn --model "$testdata/models/person_detect.tflite" \
	--input "$testdata/golden/person_detect_person/input_0.bin" --output-dir "$tmp" >"$tmp/summary.json"
grep -q '"backend": "armnn/CpuAcc' "$tmp/summary.json"

echo "test-armnn-arm64: the delegate's tests (go test -tags armnn, GOARCH=arm64) under qemu"
go test -c -tags armnn -o "$tmp/armnn.test" ./internal/runtime/armnn
(cd internal/runtime/armnn && EDGED_TESTDATA=$testdata EDGED_TEST_EXEC_WRAPPER="$qemu" $qemu "$tmp/armnn.test" -test.count=1 -test.v) | grep -E '^(--- |ok|PASS|FAIL)|drift|max difference|auto:' | grep -v '^--- SKIP' || true
(cd internal/runtime/armnn && EDGED_TESTDATA=$testdata EDGED_TEST_EXEC_WRAPPER="$qemu" $qemu "$tmp/armnn.test" -test.count=1 >/dev/null)
echo "test-armnn-arm64: passed"
