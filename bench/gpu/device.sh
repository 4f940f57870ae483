#!/usr/bin/env bash
# Runs on the GPU machine (see README.md): unpacks Node, Dawn and the Vulkan loaders that pack.sh prepared, makes
# a random ~1.1B-parameter llama with a random head, then measures PyTorch eager and the SDK's WebGPU backend on
# it and on the demo model. Results go to $OUT (or ./gpu-results): torch.json, webgpu.json, log.txt.
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

# Node and Dawn, unpacked outside the repo.
kit=/tmp/gpu-kit
mkdir -p $kit/bin $kit/node_modules/@recyclegpt $kit/node_modules/webgpu/dist/linux-x64
xz -dc .gpu-kit/node.xz > $kit/bin/node && chmod +x $kit/bin/node
cp .gpu-kit/webgpu/package.json .gpu-kit/webgpu/index.js $kit/node_modules/webgpu/
xz -dc .gpu-kit/webgpu/dist/linux-x64/dawn.node.xz > $kit/node_modules/webgpu/dist/linux-x64/dawn.node
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
node --version

models=/tmp/gpu-models
"$python" -m bench.gpu.make_models $models --shape $shape || exit 1
base=$models/$shape-q8_0.gguf head=$models/$shape-recycle.gguf
pairs=("$base:$head")
[ $shape = small ] || pairs=("models/demo/demo-q8_0.gguf:models/demo/demo-recycle.gguf" "${pairs[@]}")

echo "== PyTorch eager"
"$python" -m bench.gpu.torch_decode "${pairs[@]%%:*}" --tokens "$tokens" > "$out/torch.json" || exit 1
echo "== WebGPU (Dawn)"
timeout 400 node bench/gpu/webgpu_decode.mjs "${pairs[@]}" --tokens "$tokens" > "$out/webgpu.json" || exit 1
node bench/gpu/summary.mjs "$out/torch.json" "$out/webgpu.json" | tee "$out/summary.md"
