#!/usr/bin/env bash
# Instructions per decode step (or per PASS-token pass) of the engine on FILE, by valgrind's callgrind:
# the difference between runs of A and B steps, so that loading and compiling cancel out. Repeatable on a
# loaded machine, unlike timings. Usage: wasm/perf/count.sh FILE [WASM] [A] [B]; NATIVE=1 counts native
# llama.cpp instead (native-steps.mjs: valgrind emulates no AVX-512, so ggml runs its AVX2 kernels).
set -euo pipefail
file=$1 wasm=${2:-sdk/wasm/recyclegpt.wasm} a=${3:-2} b=${4:-6}
script=wasm/perf/steps.mjs
[ "${NATIVE:-0}" = 1 ] && script=wasm/perf/native-steps.mjs wasm=llama.cpp
count() {
  valgrind --tool=callgrind --smc-check=all --callgrind-out-file=/dev/null node --no-liftoff --no-wasm-tier-up \
    $script "$file" "$1" "$wasm" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
ia=$(count "$a") ib=$(count "$b")
echo "$(basename "$file") $(basename "$wasm"): $(( (ib - ia) / (b - a) / 1000000 )) M instructions per step"
