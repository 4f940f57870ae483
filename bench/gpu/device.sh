#!/usr/bin/env bash
# Runs on the GPU machine (see README.md): unpacks Node, Dawn and the Vulkan loaders that pack.sh prepared, makes
# a random ~1.1B-parameter llama with a random head, then measures PyTorch eager and the SDK's WebGPU backend on
# it and on the demo model. Results go to $OUT (or /tmp/gpu-results): torch.json, webgpu.json, summary.md, log.txt.
# With --small it uses only a tiny random model, to try the scripts on a CPU machine (SwiftShader's Vulkan driver).
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/gpu-results}
mkdir -p "$out"
exec > >(tee "$out/log.txt") 2>&1
shape=llama1b
[ "${1:-}" = "--small" ] && shape=small
tokens=${TOKENS:-128}
python=${PYTHON:-python3}

# Node and Dawn, unpacked outside the repo; without them nothing below can run.
fail() { echo "device.sh: $*" >&2; exit 1; }
[ -f .gpu-kit/node.xz ] && [ -f sdk/dist/index.js ] && [ -f kernels/dist/index.js ] || fail "run bench/gpu/pack.sh first and carry .gpu-kit, sdk/dist, kernels/dist and sdk/wasm"
kit=/tmp/gpu-kit
rm -rf $kit
mkdir -p $kit/bin $kit/node_modules/@recyclegpt $kit/node_modules/webgpu/dist/linux-x64
xz -dc .gpu-kit/node.xz > $kit/bin/node && chmod +x $kit/bin/node || fail "cannot unpack Node"
cp .gpu-kit/webgpu/package.json .gpu-kit/webgpu/index.js $kit/node_modules/webgpu/ || fail "cannot copy the webgpu package"
xz -dc .gpu-kit/webgpu/dist/linux-x64/dawn.node.xz > $kit/node_modules/webgpu/dist/linux-x64/dawn.node || fail "cannot unpack Dawn"
ln -sfn "$PWD/kernels" $kit/node_modules/@recyclegpt/kernels
# The SDK's bare imports ('@recyclegpt/kernels', 'webgpu') resolve through a node_modules beside the repo's folders.
[ -e node_modules ] || ln -s $kit/node_modules node_modules
export PATH=$kit/bin:$PATH

if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  # The device README's recipe: loader packages into /, then the NVIDIA ICD and EGL vendor files.
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  [ -f "$VK_DRIVER_FILES" ] || export VK_DRIVER_FILES=$(ls /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json 2>/dev/null | head -1)
  echo "VK_DRIVER_FILES=$VK_DRIVER_FILES"
elif [ -f /usr/lib/chromium/vk_swiftshader_icd.json ]; then
  export VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json LD_LIBRARY_PATH=/usr/lib/chromium
fi
node --version || fail "the unpacked Node does not run"

models=/tmp/gpu-models
"$python" -m bench.gpu.make_models $models --shape $shape || fail "making the models failed"
base=$models/$shape-q8_0.gguf head=$models/$shape-recycle.gguf
pairs=("$base:$head")
[ $shape = small ] || pairs=("models/demo/demo-q8_0.gguf:models/demo/demo-recycle.gguf" "${pairs[@]}")

echo "== PyTorch eager"
"$python" -m bench.gpu.torch_decode "${pairs[@]%%:*}" --tokens "$tokens" > "$out/torch.json" || fail "the PyTorch run failed"
echo "== WebGPU (Dawn)"
# Each model's results are written as soon as they are measured; a run cut short still leaves them.
timeout 400 node bench/gpu/webgpu_decode.mjs "${pairs[@]}" --tokens "$tokens" --seconds "${SECONDS_PER_MODEL:-90}" --out "$out/webgpu.json" || echo "device.sh: the WebGPU run ended early (exit $?)"

[ -s "$out/torch.json" ] && [ -s "$out/webgpu.json" ] || fail "a result file is empty"
node bench/gpu/summary.mjs "$out/torch.json" "$out/webgpu.json" | tee "$out/summary.md"
