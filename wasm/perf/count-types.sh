#!/usr/bin/env bash
# Instructions per weight (multiply-add) of a decode step (or PASS-token pass) on the kernel probe files,
# one line per type: wasm/perf/count-types.sh [WASM] [TYPES...]   (files: python3 wasm/perf/models.py kern …)
set -euo pipefail
wasm=${1:-sdk/wasm/recyclegpt.wasm}; shift || true
types=${*:-Q8_0 Q4_0-pure Q4_1-pure Q5_0-pure Q5_1-pure Q2_K-pure Q3_K_M-pure Q4_K_M-pure Q5_K_M-pure Q6_K-pure F16 BF16}
weights=31457280 # the probe's matrices: 2 layers × 13.6 M + 4096 × 1024
for t in $types; do
  line=$(wasm/perf/count.sh "wasm/perf/.cache/kern-$t.gguf" "$wasm" 2 12)
  m=$(echo "$line" | sed 's/.*: \([0-9]*\) M.*/\1/')
  echo "$t: $m M instructions per step, $(echo "scale=2; $m * 1000000 / $weights" | bc) per weight"
done
