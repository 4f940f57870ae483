#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks for building, the demo and the tests. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

# rustc/cargo 1.63 with the wasm32 standard library (the engine has no external crates, so no crates.io);
# chromium for the browser tests (WebGPU on SwiftShader, the playground);
# torch + sentencepiece + openblas for the trainer; jinja2 renders chat templates for reference.
# lld-14 provides rust-lld, the wasm32 linker (only a Recommends of libstd-rust-dev-wasm32, which
# --no-install-recommends skips). wabt assembles the relaxed-SIMD engine module (wasm/build.mjs).
packages=(rustc cargo libstd-rust-dev-wasm32 lld-14 wabt chromium python3-torch python3-numpy python3-sentencepiece python3-jinja2 libopenblas0-pthread)
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

# Check, before anything relies on it, that every tool the build and the tests start is there and works,
# so a missing install step fails here with its name rather than deep inside a test.
fail() { echo "setup: $1" >&2; exit 1; }
node wasm/build.mjs >/dev/null 2>&1 || fail "the WebAssembly engine does not build (node wasm/build.mjs): are lld-14 (rust-lld, the wasm32 linker) and wabt installed? Output: $(node wasm/build.mjs 2>&1 | tail -5)"
/usr/bin/chromium --headless --no-sandbox --disable-gpu --version >/dev/null 2>&1 || fail "chromium does not run (/usr/bin/chromium): apt-get install chromium"
# Debian's python3-* packages install for Debian's interpreter; a `python3` earlier on PATH (pyenv) cannot
# import them, so the tests and the trainer name /usr/bin/python3.
/usr/bin/python3 -c 'import torch, numpy, sentencepiece, jinja2' 2>/dev/null || fail "/usr/bin/python3 lacks torch, numpy, sentencepiece or jinja2: apt-get install python3-torch python3-numpy python3-sentencepiece python3-jinja2"
node node_modules/wrangler/bin/wrangler.js --version >/dev/null 2>&1 || fail "wrangler does not run: npm ci"
# node-llama-cpp's own binary probe spawns a process with a deadline that a busy machine can miss: check
# that the module loads and that its prebuilt CPU addon is there.
node --input-type=module -e "await import('./tools/peers/node_modules/node-llama-cpp/dist/index.js')" >/dev/null 2>&1 \
  && [ -f tools/peers/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/llama-addon.node ] \
  || fail "node-llama-cpp (tools/peers) or its prebuilt CPU addon is missing: npm install --prefix tools/peers --omit=optional"
echo "setup: ready (engine built; chromium, python3 torch/jinja2, wrangler and node-llama-cpp work)"
