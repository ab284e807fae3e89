#!/usr/bin/env bash
# Packs everything a GPU run needs that the GPU machine cannot fetch, in pieces each call can
# carry (a call carries at most 64 MiB with the working tree):
#   .device/          Node.js, the production node_modules, the Vulkan loaders (48 MiB)
#   .gpu/N/part-*     the CUDA provider libraries and the default model's GGUF, in 58 MiB pieces
# Run from the project root after `npm ci`. bench/gpu/README.md says how the pieces travel.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/../.."
home="${AUTOGLM_HOME:-$HOME/.cache/autoglm}/gpu"
mkdir -p "$home" .git/info
for p in /.device/ /.gpu/; do grep -qxF "$p" .git/info/exclude 2>/dev/null || echo "$p" >> .git/info/exclude; done

ort=$(node -p "require('onnxruntime-node/package.json').version")
wheel=$(ls "$home"/onnxruntime_gpu-"$ort"-*.whl 2>/dev/null | head -1 || true)
if [ -z "$wheel" ]; then
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d "$home" "onnxruntime-gpu==$ort"
  wheel=$(ls "$home"/onnxruntime_gpu-"$ort"-*.whl | head -1)
fi
libs="$home/libs-$ort"
if [ ! -f "$libs/libonnxruntime_providers_cuda.so.xz" ]; then
  rm -rf "$libs" && mkdir -p "$libs"
  unzip -q -j -o "$wheel" 'onnxruntime/capi/libonnxruntime_providers_cuda.so' \
    'onnxruntime/capi/libonnxruntime_providers_shared.so' -d "$libs"
  # The provider must be built for the CUDA major version the GPU machine has (13).
  readelf -d "$libs/libonnxruntime_providers_cuda.so" | grep -q 'libcudart.so.13' ||
    { echo "onnxruntime-gpu $ort is not built for CUDA 13" >&2; exit 1; }
  xz -T0 -6 "$libs/libonnxruntime_providers_cuda.so"
fi

gguf=$(node --input-type=module -e "
const { DEFAULT_MODEL, pullModel } = await import('./server/src/model/pull/index.ts');
const r = await pullModel(DEFAULT_MODEL.source);
console.log(r.path);")

rm -rf .gpu && mkdir -p .gpu/stage
cp "$libs"/libonnxruntime_providers_cuda.so.xz "$libs"/libonnxruntime_providers_shared.so .gpu/stage/
cp "$gguf" .gpu/stage/default.gguf
tar -C .gpu/stage -cf - . | split -b 58M -d -a 2 - .gpu/part-
rm -rf .gpu/stage
n=0
for f in .gpu/part-*; do mkdir -p ".gpu/$n" && mv "$f" ".gpu/$n/"; n=$((n + 1)); done

# Node.js and only the production dependencies: dev tools would not fit beside a piece.
rm -rf .device && mkdir -p .device/gl
xz -T0 -6 -c "$(readlink -f "$(command -v node)")" > .device/node.xz
prod=$(mktemp -d)
cp package.json package-lock.json .npmrc "$prod"/
(cd "$prod" && npm ci -s --omit=dev --omit=optional --no-audit --no-fund)
# --omit=optional also drops koffi's prebuilt native package (the node binary is the optional
# dependency this leaves out); bring it back from the local install.
[ -d node_modules/@koromix/koffi-linux-x64 ] && mkdir -p "$prod/node_modules/@koromix" &&
  cp -r node_modules/@koromix/koffi-linux-x64 "$prod/node_modules/@koromix/"
tar -C "$prod" --exclude='node_modules/onnxruntime-node/bin/napi-v*/win32' \
  --exclude='node_modules/onnxruntime-node/bin/napi-v*/darwin' \
  --exclude='node_modules/onnxruntime-node/bin/napi-v*/linux/arm64' \
  --exclude='node_modules/@kubernetes' -cf - node_modules | xz -T0 -6 > .device/nm.tar.xz
rm -rf "$prod"
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64-lists'
mkdir -p /tmp/amd64-lists/partial
apt-get $o update -qq >/dev/null 2>&1 || true
(cd .device/gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libgl1 libglx0 >/dev/null 2>&1) || echo "warning: no Vulkan loader: WebGPU will not load there" >&2
du -sh .device .gpu/* | sed 's/^/packed: /'
echo "pieces: $n (carry .gpu/0 … .gpu/$((n - 1)) on consecutive calls, then .device with the run)"
