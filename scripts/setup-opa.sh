#!/usr/bin/env bash
# Builds (idempotently) the policy tools the tests in test/policies/ use, from Go modules, into
# ${AUTOGLM_HOME:-$HOME/.cache/autoglm}/tools/bin:
#   opa    Open Policy Agent, for `opa test policies/` (the Rego unit tests);
#   gator  Gatekeeper's CLI, for `gator verify policies/` (templates + constraints + objects),
#          only with --with-gator (or AUTOGLM_GATOR=1): it is a far bigger build.
# Each binary is rebuilt only when it is missing or reports another version. Go's module and
# build caches are kept, so a rebuild after a version bump is mostly incremental. On 2 cores a
# cold opa build takes several minutes and gator longer: run it in the background and poll.
#   OPA_VERSION         the opa module version (default below)
#   GATEKEEPER_VERSION  the gatekeeper/v3 module version gator is built from (default below)
set -euo pipefail

OPA_VERSION="${OPA_VERSION:-v1.22.2}"
GATEKEEPER_VERSION="${GATEKEEPER_VERSION:-v3.23.1}"
HOME_DIR="${AUTOGLM_HOME:-$HOME/.cache/autoglm}"
BIN="$HOME_DIR/tools/bin"
export PATH="$PATH:/usr/local/go/bin"
export GOBIN="$BIN"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

log() { echo "setup-opa: $*" >&2; }
elapsed() { echo "$(($(date +%s) - $1))s"; }

WITH_GATOR="${AUTOGLM_GATOR:-0}"
for arg in "$@"; do
  case "$arg" in
    --with-gator) WITH_GATOR=1 ;;
    *) log "unknown argument $arg (known: --with-gator)"; exit 2 ;;
  esac
done

if ! command -v go >/dev/null 2>&1; then
  log "go not found (looked in PATH and /usr/local/go/bin)"
  exit 1
fi
mkdir -p "$BIN"

# `opa version` prints "Version: 1.22.2".
opa_version() { "$BIN/opa" version 2>/dev/null | sed -n 's/^Version: /v/p'; }
if [ "$(opa_version)" = "$OPA_VERSION" ]; then
  log "opa $OPA_VERSION ready: $BIN/opa"
else
  log "building opa $OPA_VERSION ($(go version | cut -d' ' -f3))"
  t0=$(date +%s)
  go install "github.com/open-policy-agent/opa@$OPA_VERSION"
  log "opa $OPA_VERSION built in $(elapsed "$t0"): $BIN/opa"
fi

if [ "$WITH_GATOR" = "1" ]; then
  # A stamp names the version: gator's own version output depends on link-time flags.
  STAMP="$BIN/.gator-$GATEKEEPER_VERSION"
  if [ -x "$BIN/gator" ] && [ -f "$STAMP" ]; then
    log "gator ($GATEKEEPER_VERSION) ready: $BIN/gator"
  else
    log "building gator from gatekeeper $GATEKEEPER_VERSION"
    t0=$(date +%s)
    go install "github.com/open-policy-agent/gatekeeper/v3/cmd/gator@$GATEKEEPER_VERSION"
    rm -f "$BIN"/.gator-*
    touch "$STAMP"
    log "gator $GATEKEEPER_VERSION built in $(elapsed "$t0"): $BIN/gator"
  fi
fi
