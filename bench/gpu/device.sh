#!/usr/bin/env bash
# Runs on the GPU machine from the project root.
#   bash bench/gpu/device.sh piece          keep the carried piece under /tmp/gpu-pieces
#   bash bench/gpu/device.sh run [args]     join the pieces, install, run bench/gpu/run.ts
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/../.."
pieces=/tmp/gpu-pieces
mkdir -p "$pieces"
for f in .gpu/*/part-*; do [ -e "$f" ] && cp "$f" "$pieces/"; done
ls -la "$pieces"
[ "${1:-}" = run ] || exit 0
shift

[ -x /tmp/node ] || { xz -dc .device/node.xz > /tmp/node && chmod +x /tmp/node; }
[ -d node_modules/onnxruntime-node ] || tar xJf .device/nm.tar.xz
for f in .device/gl/*.deb; do [ -e "$f" ] && dpkg -x "$f" /; done
ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json

ortlib=node_modules/onnxruntime-node/bin/napi-v6/linux/x64
if [ ! -f "$ortlib/libonnxruntime_providers_cuda.so" ]; then
  mkdir -p /tmp/gpu-files
  cat "$pieces"/part-* | tar -C /tmp/gpu-files -xf -
  xz -dc /tmp/gpu-files/libonnxruntime_providers_cuda.so.xz > "$ortlib/libonnxruntime_providers_cuda.so"
  cp /tmp/gpu-files/libonnxruntime_providers_shared.so "$ortlib/"
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
/tmp/node bench/gpu/run.ts --gguf /tmp/gpu-files/default.gguf "$@"
