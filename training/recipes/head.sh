#!/usr/bin/env bash
# Trains a recycle head for a base GGUF you already have, then measures it: any architecture the engine runs
# (llama: Llama 3.x, SmolLM2, TinyLlama; qwen2: Qwen2.5; qwen3; gemma3) in any type it runs (F32, F16, BF16,
# Q4_0 … Q8_0, Q2_K … Q6_K, e.g. a Q4_K_M download).
#   training/recipes/head.sh path/to/model.gguf
# Writes training/runs/head-NAME/NAME-recycle.gguf (NAME: the file name without .gguf). Text: the offline
# English corpus (training.corpus; TEXT=… HELDOUT=… for your own, documents separated by a line holding only
# U+001E), encoded with the model's own tokenizer. CPU by default (time-bounded by MINUTES); on a CUDA host
# PRESET=gpu. Any setting below can be overridden from the environment; rerunning resumes.
set -euo pipefail
if [ $# -ne 1 ] || [ ! -f "$1" ]; then
  sed -n '2,9p' "$0" >&2
  exit 2
fi
BASE=$(realpath "$1")
cd "$(dirname "$0")/../.."
PY=${PY:-/usr/bin/python3}
NAME=${NAME:-$(basename "$BASE" .gguf)}
DATA=${DATA:-training/runs/data}
RUN=${RUN:-training/runs/head-$NAME}
TEXT=${TEXT:-$DATA/train.txt}
HELDOUT=${HELDOUT:-$DATA/heldout.txt}
if [ "${PRESET:-cpu}" = gpu ]; then
  : "${BATCH:=32}" "${CTX:=512}" "${STEPS:=5000}" "${MINUTES:=120}" "${LR:=1e-3}" "${THREADS:=0}"
else
  : "${BATCH:=8}" "${CTX:=256}" "${STEPS:=2000}" "${MINUTES:=60}" "${LR:=2e-3}" "${THREADS:=1}"
  export OPENBLAS_NUM_THREADS=1  # leave the other cores to everyone else
fi

mkdir -p "$DATA" "$RUN"
[ -f "$TEXT" ] || $PY -m training.corpus --out "$DATA"
for split in train heldout; do
  input=$TEXT
  [ "$split" = heldout ] && input=$HELDOUT
  [ -f "$RUN/$split.bin" ] || npx tsx training/encode.ts --base "$BASE" --input "$input" --out "$RUN/$split.bin"
done

RESUME=()
[ -f "$RUN/checkpoint.pt" ] && RESUME=(--resume)
nice -n 10 $PY -m training.train head "${RESUME[@]}" --base "$BASE" --name "$NAME" --out "$RUN" \
  --train-tokens "$RUN/train.bin" --val-tokens "$RUN/heldout.bin" --head-layers 1 --ctx "$CTX" \
  --batch "$BATCH" --steps "$STEPS" --max-minutes "$MINUTES" --lr "$LR" --warmup 50 --hidden-weight 0.1 \
  --eval-every 200 --save-every 100 --threads "$THREADS" --head-type q8_0
nice -n 10 $PY -m training.evaluate --base "$BASE" --head "$RUN/$NAME-recycle.gguf" --tokens "$RUN/heldout.bin" \
  --ctx "$CTX" --max-windows 32 | tee "$RUN/eval.txt"
echo "head: $RUN/$NAME-recycle.gguf"
