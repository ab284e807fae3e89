#!/usr/bin/env bash
# Builds (idempotently) a Prometheus 3 with the OTLP receiver (`--web.enable-otlp-receiver`),
# for test/operator/otlp.test.ts, which pushes the servers' OpenTelemetry metrics into it.
# Debian's package is Prometheus 2.42, which has no OTLP receiver. The binary goes to
#   ${AUTOGLM_HOME:-$HOME/.cache/autoglm}/tools/bin/prometheus-otlp
# built with `go install` from the Go module github.com/prometheus/prometheus, whose v0.3XX.Y
# versions are the releases 3.XX.Y. Two build choices keep it small and fast:
#   -tags remove_all_sd   leaves out every service discovery but static and file (the cloud
#                         SDKs and client-go are most of the build); the tests need neither;
#   no builtinassets tag  the web UI's assets are not embedded (the module does not ship them):
#                         the UI answers 500, the HTTP API and the OTLP receiver work.
# The binary is rebuilt only when it is missing or was built from another version (read back
# with `go version -m`). On 2 cores a cold build takes several minutes: run it in the
# background and poll, e.g. `nohup scripts/setup-prometheus-otlp.sh >log 2>&1 &`.
#   PROMETHEUS_OTLP_VERSION  the module version (default below)
set -euo pipefail

VERSION="${PROMETHEUS_OTLP_VERSION:-v0.316.0}"
MODULE=github.com/prometheus/prometheus
HOME_DIR="${AUTOGLM_HOME:-$HOME/.cache/autoglm}"
BIN="$HOME_DIR/tools/bin"
TARGET="$BIN/prometheus-otlp"
export PATH="$PATH:/usr/local/go/bin"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
# The module's go directive must not be newer than the local Go: never fetch a toolchain.
export GOTOOLCHAIN=local

log() { echo "setup-prometheus-otlp: $*" >&2; }
elapsed() { echo "$(($(date +%s) - $1))s"; }

if ! command -v go >/dev/null 2>&1; then
  log "go not found (looked in PATH and /usr/local/go/bin)"
  exit 1
fi

# `go version -m` prints "\tmod\tgithub.com/prometheus/prometheus\tv0.316.0\t…" for the main module.
built_version() { go version -m "$TARGET" 2>/dev/null | awk -v m="$MODULE" '$1 == "mod" && $2 == m { print $3 }'; }
if [ -x "$TARGET" ] && [ "$(built_version)" = "$VERSION" ]; then
  echo "prometheus-otlp ready: $TARGET ($VERSION)"
  exit 0
fi

mkdir -p "$BIN"
# One build at a time; a second caller waits for the first and then finds the binary.
exec 9>"$BIN/.prometheus-otlp.lock"
flock 9
if [ -x "$TARGET" ] && [ "$(built_version)" = "$VERSION" ]; then
  echo "prometheus-otlp ready: $TARGET ($VERSION)"
  exit 0
fi

# v0.316.0 is release 3.16.0: the module's minor is the major followed by the two-digit minor.
v="${VERSION#v0.}"
rest="${v:1}"
release="${v:0:1}.$((10#${rest%%.*})).${rest#*.}"
log "building Prometheus $VERSION ($(go version | cut -d' ' -f3)); this takes minutes"
t0=$(date +%s)
STAGE="$(mktemp -d "$BIN/.prometheus-otlp-build.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT
GOBIN="$STAGE" go install -tags remove_all_sd \
  -ldflags "-X github.com/prometheus/common/version.Version=$release" \
  "$MODULE/cmd/prometheus@$VERSION"
mv -f "$STAGE/prometheus" "$TARGET"
log "built in $(elapsed "$t0")"
echo "prometheus-otlp ready: $TARGET ($VERSION)"
