#!/usr/bin/env bash
# Creates (idempotently) the Python environment that runs examples/clients/openai_client.py in
# test/gitops/clients.test.ts: the `openai` package from PyPI, pinned, in
# ${AUTOGLM_HOME:-$HOME/.cache/autoglm}/openai-venv.
set -euo pipefail

OPENAI_VERSION="${OPENAI_PY_VERSION:-3.54.0}"
HOME_DIR="${AUTOGLM_HOME:-$HOME/.cache/autoglm}"
VENV="$HOME_DIR/openai-venv"
PY="${PYTHON:-python3}"

installed() {
  "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("openai"))' 2>/dev/null || true
}
if [ "$(installed)" = "$OPENAI_VERSION" ]; then
  echo "setup-python-openai: openai $OPENAI_VERSION ready: $VENV" >&2
  exit 0
fi
mkdir -p "$HOME_DIR"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet "openai==$OPENAI_VERSION"
echo "setup-python-openai: openai $(installed) ready: $VENV" >&2
