#!/usr/bin/env bash
# Prepares, on this machine, what bench/gpu/device.sh needs on a GPU machine that has PyTorch but no Node:
# a compressed Node binary and Dawn (.gpu-kit/), the Vulkan/GL loader packages (.gl/), and the built SDK.
# Both folders are kept out of git through .git/info/exclude. Prints the device call to make.
set -euo pipefail
cd "$(dirname "$0")/../.."
npm run build >/dev/null
exclude() { grep -qx "$1" .git/info/exclude 2>/dev/null || echo "$1" >> .git/info/exclude; }
exclude /.gpu-kit/
exclude /.gl/

kit=.gpu-kit
rm -rf "$kit"
mkdir -p "$kit/webgpu/dist/linux-x64"
xz -T0 -6 -c "$(command -v node)" > "$kit/node.xz"
cp node_modules/webgpu/package.json node_modules/webgpu/index.js "$kit/webgpu/"
xz -T0 -6 -c node_modules/webgpu/dist/linux-x64/dawn.node > "$kit/webgpu/dist/linux-x64/dawn.node.xz"

# The loaders the device machine lacks (its README): libvulkan1 finds the NVIDIA ICD, glvnd the EGL/GLX vendors.
mkdir -p .gl /tmp/amd64/partial
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
# shellcheck disable=SC2086
apt-get $o update -qq
# shellcheck disable=SC2086
(cd .gl && apt-get $o download -qq libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)

du -ch "$kit" .gl sdk/dist kernels/dist sdk/wasm | tail -1
cat <<'CALL'
device run: command "bash bench/gpu/device.sh", carry [".gpu-kit", ".gl", "sdk/dist", "kernels/dist", "sdk/wasm"], timeout_s 540
CALL
