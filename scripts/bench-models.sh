#!/usr/bin/env bash
# Prints a table of `edged bench` on the reference models in the shared test
# data, side by side in one run: the reference kernels, the optimized
# kernels on one thread and on two, as median invoke latency and MAC/s, with
# the speed-ups (reference / optimized, 1 thread / 2 threads) and the
# optimized kernels' heap allocations per invoke.
#   scripts/bench-models.sh [path/to/edged]
# RUNS (default 200) timed invokes per model after WARMUP (default 20);
# HEAVY_RUNS (default 5, after 2) for YOLOv8n and the traffic model, whose
# reference run takes seconds. Short runs mostly time thread start-up.
# MODELS overrides the list of models (names without .tflite).
set -euo pipefail
edged=${1:-./edged}
data=${EDGED_TESTDATA:-../shared/testdata}
[ -d "$data/models" ] || { echo "bench-models: no models in $data (set EDGED_TESTDATA)" >&2; exit 1; }
models=${MODELS:-"person_detect mobilenet_v1_0.25_128_quant yolov8n_full_integer_quant traffic_model micro_speech_quantized hello_world_int8 trained_lstm_int8"}

bench() { # model-file runs warmup extra-flags...
	local f=$1 runs=$2 warmup=$3
	shift 3
	"$edged" bench --model "$f" --runs "$runs" --warmup "$warmup" --json "$@"
}

printf '%-30s %12s %12s %12s %12s %10s %10s %10s %8s %8s %7s\n' model macs ref_us opt1_us opt2_us ref_MAC/s opt1_MAC/s opt2_MAC/s ref/opt1 1t/2t allocs
for m in $models; do
	f="$data/models/$m.tflite"
	[ -f "$f" ] || continue
	runs=${RUNS:-200} warmup=${WARMUP:-20} refruns=${RUNS:-200}
	case "$m" in
	yolov8n*|traffic*) runs=${HEAVY_RUNS:-5} warmup=2 refruns=${HEAVY_RUNS:-5} ;;
	*) refruns=$(( runs < 20 ? runs : 20 )) ;; # the reference kernels are slow
	esac
	if ! ref=$(bench "$f" "$refruns" 2 --reference 2>&1) ||
		! opt1=$(bench "$f" "$runs" "$warmup" --threads 1 2>&1) ||
		! opt2=$(bench "$f" "$runs" "$warmup" --threads 2 2>&1); then
		printf '%-30s %s\n' "$m" "cannot run"
		continue
	fi
	python3 - "$m" "$ref" "$opt1" "$opt2" <<'PY'
import json, sys
name = sys.argv[1]
ref, o1, o2 = (json.loads(a) for a in sys.argv[2:5])
print(f"{name:30s} {o1['macs']:12d} {ref['median_us']:12.1f} {o1['median_us']:12.1f} {o2['median_us']:12.1f} "
      f"{ref['macs_per_second']:10.3g} {o1['macs_per_second']:10.3g} {o2['macs_per_second']:10.3g} "
      f"{ref['median_us'] / o1['median_us']:8.1f} {o1['median_us'] / o2['median_us']:8.2f} {max(o1['allocs_per_invoke'], o2['allocs_per_invoke']):7.2f}")
PY
done
