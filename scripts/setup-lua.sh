#!/usr/bin/env bash
# Installs (idempotently) the Lua interpreters that test/gitops/argocd-health.test.ts runs the
# Argo CD health check (gitops/argocd/health.lua) with: Debian's lua5.4, and lua5.1, the
# dialect of gopher-lua, which Argo CD embeds.
set -euo pipefail

missing=()
for bin in lua5.4 lua5.1; do
  command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "setup-lua: lua5.4 and lua5.1 ready" >&2
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup-lua: installing ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
for bin in "${missing[@]}"; do "$bin" -v; done
