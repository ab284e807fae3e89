#!/usr/bin/env bash
# Makes sure a `prometheus` binary is on PATH, for test/dashboards, which runs every dashboard
# query against a real Prometheus (Debian bookworm's package: Prometheus 2.42). Idempotent:
# nothing is done when one is already there, and apt-get update runs only before an install.
# The tests start their own Prometheus on loopback; the package's service is not used.
set -euo pipefail

if ! command -v prometheus >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
echo "prometheus ready: $(command -v prometheus) ($(prometheus --version 2>&1 | head -n 1))"
