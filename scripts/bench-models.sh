#!/usr/bin/env bash
# Prints a table of `edged bench` on the reference models in the shared test
# data: median and p90 invoke latency, MACs and MAC/s, arena and allocations.
#   scripts/bench-models.sh [path/to/edged]
set -euo pipefail
edged=${1:-./edged}
data=${EDGED_TESTDATA:-../shared/testdata}
[ -d "$data/models" ] || { echo "bench-models: no models in $data (set EDGED_TESTDATA)" >&2; exit 1; }
printf '%-36s %12s %12s %14s %10s %10s %7s\n' model median_us p90_us macs MAC/s arena allocs
for m in hello_world_int8 micro_speech_quantized person_detect mobilenet_v1_0.25_128_quant trained_lstm_int8 traffic_model yolov8n_full_integer_quant; do
	f="$data/models/$m.tflite"
	[ -f "$f" ] || continue
	runs=${RUNS:-20}
	case "$m" in yolov8n*|traffic*) runs=${HEAVY_RUNS:-3} ;; esac
	if ! out=$("$edged" bench --model "$f" --runs "$runs" --warmup 1 --json 2>&1); then
		printf '%-36s %s\n' "$m" "cannot run: $(echo "$out" | head -1)"
		continue
	fi
	python3 - "$m" "$out" <<'PY'
import json, sys
name, r = sys.argv[1], json.loads(sys.argv[2])
print(f"{name:36s} {r['median_us']:12.1f} {r['p90_us']:12.1f} {r['macs']:14d} {r['macs_per_second']:10.3g} {r['arena_bytes']:10d} {r['allocs_per_invoke']:7.2f}")
PY
done
