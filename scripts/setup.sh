#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks for building, the demo and the tests. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

# rustc/cargo 1.63 with the wasm32 standard library (the engine has no external crates, so no crates.io);
# chromium for the browser tests (WebGPU on SwiftShader, the playground);
# torch + sentencepiece + openblas for the trainer.
packages=(rustc cargo libstd-rust-dev-wasm32 lld-14 chromium python3-torch python3-numpy python3-sentencepiece libopenblas0-pthread)
if ! dpkg -s "${packages[@]}" >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then echo "setup: run as root, or: sudo apt-get install -y ${packages[*]}" >&2; exit 1; fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

npm ci --no-audit --no-fund
# Reference engines for the parity tests and the benchmark; --omit=optional keeps node-llama-cpp
# to its CPU build (its CUDA/Vulkan builds are ~700 MB of optional packages). `npm install`, not `npm ci`:
# the registry lacks some of node-llama-cpp's optional platform packages, which `npm ci` refuses.
npm install --prefix tools/peers --omit=optional --no-audit --no-fund
