#!/usr/bin/env bash
# Reproduces models/demo: corpus -> tokenizer -> joint base + recycle head -> GGUFs -> eval.
#
# CPU (what models/demo was made with, ~25 min on one core):
#   training/recipes/demo.sh
# GPU host (torch 2.x + CUDA, numpy, sentencepiece; bigger model, bf16 autocast is automatic):
#   PY=python3 PRESET=gpu training/recipes/demo.sh
# The learning-rate schedule follows wall time (MINUTES) as well as STEPS, so a faster machine trains
# more steps: runs are repeatable in recipe, not bit for bit.
# Any setting below can be overridden from the environment, e.g. MINUTES=60.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-/usr/bin/python3}
RUN=${RUN:-training/runs/demo}
DATA=${DATA:-training/runs/data}
OUT=${OUT:-models/demo}
if [ "${PRESET:-cpu}" = gpu ]; then
  : "${DIM:=512}" "${LAYERS:=8}" "${HEADS:=8}" "${KV_HEADS:=4}" "${FFN:=1376}" "${BATCH:=64}"
  : "${STEPS:=20000}" "${MINUTES:=120}" "${LR:=1e-3}" "${THREADS:=0}"
else
  : "${DIM:=256}" "${LAYERS:=6}" "${HEADS:=8}" "${KV_HEADS:=4}" "${FFN:=704}" "${BATCH:=8}"
  : "${STEPS:=2000}" "${MINUTES:=22}" "${LR:=2e-3}" "${THREADS:=1}"
  export OPENBLAS_NUM_THREADS=1  # leave the other core to everyone else
fi

mkdir -p "$DATA" "$RUN" "$OUT"
[ -f "$DATA/train.txt" ] || $PY -m training.corpus --out "$DATA"
[ -f "$DATA/tokenizer.model" ] || $PY -m training.tokenizer train --input "$DATA/train.txt" --prefix "$DATA/tokenizer" --vocab 4096
for split in train heldout; do
  [ -f "$DATA/$split.bin" ] || $PY -m training.tokenizer encode --model "$DATA/tokenizer.model" --input "$DATA/$split.txt" --out "$DATA/$split.bin"
done

RESUME=()
[ -f "$RUN/checkpoint.pt" ] && RESUME=(--resume)
nice -n 10 $PY -m training.train joint "${RESUME[@]}" --name demo --out "$RUN" \
  --tokenizer "$DATA/tokenizer.model" --train-tokens "$DATA/train.bin" --val-tokens "$DATA/heldout.bin" \
  --dim "$DIM" --layers "$LAYERS" --heads "$HEADS" --kv-heads "$KV_HEADS" --ffn "$FFN" --head-layers 1 \
  --ctx 256 --batch "$BATCH" --steps "$STEPS" --max-minutes "$MINUTES" --lr "$LR" --warmup 30 \
  --recycle-weight 1.0 --eval-every 100 --save-every 100 --threads "$THREADS" \
  --export f16,q8_0,q4_0 --head-type q8_0

cp "$RUN"/demo-{f16,q8_0,q4_0,recycle}.gguf "$DATA/tokenizer.model" "$OUT/"
nice -n 10 $PY -m training.evaluate --base "$OUT"/demo-{f16,q8_0,q4_0}.gguf --head "$OUT/demo-recycle.gguf" \
  --tokens "$DATA/heldout.bin" --ctx 256 | tee "$RUN/eval.txt"

# llama.cpp must load the base, tokenize like SentencePiece and generate (skipped without node-llama-cpp).
if [ -d tools/peers/node_modules/node-llama-cpp ]; then
  $PY - "$DATA" <<'PY' > "$RUN/tokenizer-check.json"
import json, sys, sentencepiece
data = sys.argv[1]
sp = sentencepiece.SentencePieceProcessor(model_file=f"{data}/tokenizer.model")
docs = open(f"{data}/heldout.txt", encoding="utf-8").read().split("\n\x1e\n")[:50]
texts = [d[:500] for d in docs] + ["Hello  world", "naïve café ☃ 日本", "x = 12345\n\ty", "", "  two spaces"]
print(json.dumps([{"text": t, "ids": sp.encode(t)} for t in texts]))
PY
  node training/recipes/check_llama_cpp.mjs "$OUT/demo-q8_0.gguf" "$RUN/tokenizer-check.json" | tee -a "$RUN/eval.txt"
fi
