#!/usr/bin/env bash
# Creates (idempotently) the Python environment the GGUF reference tests use:
# gguf-py (llama.cpp's own GGUF library) and numpy, in ${AUTOGLM_HOME:-$HOME/.cache/autoglm}/pyenv.
# The unit tests in server/src/model/gguf and server/src/model/quant compare our reader and
# dequantizers against it; without it they skip with a message naming this script.
set -euo pipefail

GGUF_VERSION="${GGUF_VERSION:-0.19.0}"
HOME_DIR="${AUTOGLM_HOME:-$HOME/.cache/autoglm}"
VENV="$HOME_DIR/pyenv"
PY="${PYTHON:-python3}"

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import gguf, numpy' 2>/dev/null; then
  echo "python reference env ready: $VENV"
  exit 0
fi

mkdir -p "$HOME_DIR"
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet "gguf==$GGUF_VERSION" numpy
"$VENV/bin/python" -c 'import gguf, numpy; print("gguf", gguf.__file__, "numpy", numpy.__version__)'
echo "python reference env ready: $VENV"
