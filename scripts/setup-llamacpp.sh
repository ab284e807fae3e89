#!/usr/bin/env bash
# Creates (idempotently) the llama.cpp baseline that `npm run bench:serve` compares against,
# in ${AUTOGLM_HOME:-$HOME/.cache/autoglm}/llamacpp-venv:
#   1. PyPI llama-cpp-python[server], built here from its sdist for this CPU (default
#      CMAKE_ARGS), which gives `python -m llama_cpp.server`;
#   2. bin/llama-server, built with cmake from the same sdist's vendored llama.cpp: the
#      Python server runs one request at a time, llama-server batches parallel slots (-np).
#   3. versions.json: the package version and the vendored llama.cpp commit.
# pip's cache is kept, so a second venv reuses the built wheel; the cmake build folder is
# kept under llamacpp-build/ so a rebuild is incremental. Compiling takes minutes on 2 cores.
#   LLAMA_CPP_PYTHON_VERSION   the PyPI version (default below)
#   LLAMACPP_SKIP_SERVER=1     skip step 2
set -euo pipefail

VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
HOME_DIR="${AUTOGLM_HOME:-$HOME/.cache/autoglm}"
VENV="$HOME_DIR/llamacpp-venv"
BUILD="$HOME_DIR/llamacpp-build/$VERSION"
PY="${PYTHON:-python3}"
JOBS="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
export CMAKE_BUILD_PARALLEL_LEVEL="$JOBS"

log() { echo "setup-llamacpp: $*" >&2; }
elapsed() { echo "$(($(date +%s) - $1))s"; }

installed_version() {
  "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))' 2>/dev/null || true
}

# 1. The Python package and its server extra.
if [ ! -x "$VENV/bin/python" ]; then
  mkdir -p "$HOME_DIR"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
if [ "$(installed_version)" = "$VERSION" ] && "$VENV/bin/python" -c 'import llama_cpp.server, uvicorn' 2>/dev/null; then
  log "llama-cpp-python $VERSION ready"
else
  log "building llama-cpp-python[server]==$VERSION (CMAKE_ARGS='${CMAKE_ARGS:-}', $JOBS jobs)"
  t0=$(date +%s)
  "$VENV/bin/python" -m pip install "llama-cpp-python[server]==$VERSION"
  log "llama-cpp-python $VERSION installed in $(elapsed "$t0")"
fi

# 2. llama-server from the sdist's vendored llama.cpp.
STAMP="$VENV/bin/.llama-server-$VERSION"
if [ "${LLAMACPP_SKIP_SERVER:-0}" = "1" ]; then
  log "skipping llama-server (LLAMACPP_SKIP_SERVER=1)"
elif [ -x "$VENV/bin/llama-server" ] && [ -f "$STAMP" ]; then
  log "llama-server ($VERSION) ready"
else
  t0=$(date +%s)
  mkdir -p "$BUILD"
  SRC="$BUILD/llama_cpp_python-$VERSION"
  if [ ! -d "$SRC/vendor/llama.cpp" ]; then
    # pip's cache already holds the sdist from step 1, so this is usually not a download.
    "$VENV/bin/python" -m pip download --quiet --no-deps --no-binary :all: \
      -d "$BUILD" "llama-cpp-python==$VERSION"
    tar -xzf "$BUILD/llama_cpp_python-$VERSION.tar.gz" -C "$BUILD"
  fi
  log "building llama-server from $SRC/vendor/llama.cpp ($JOBS jobs)"
  GENERATOR=()
  if command -v ninja >/dev/null; then GENERATOR=(-G Ninja); fi
  # CMAKE_ARGS is split into words on purpose, as pip's build of step 1 does.
  # shellcheck disable=SC2086
  cmake -S "$SRC/vendor/llama.cpp" -B "$BUILD/cmake" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_APP=OFF \
    -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF \
    ${CMAKE_ARGS:-} >"$BUILD/cmake-configure.log"
  cmake --build "$BUILD/cmake" --target llama-server -j "$JOBS"
  install -m 0755 "$BUILD/cmake/bin/llama-server" "$VENV/bin/llama-server"
  touch "$STAMP"
  log "llama-server built in $(elapsed "$t0")"
fi

# 3. What was built, for the benchmark report. The sdist carries no git metadata; its
# changelog names the vendored llama.cpp commit (`llama-server --version` agrees).
SITE="$("$VENV/bin/python" -c 'import llama_cpp, os; print(os.path.dirname(llama_cpp.__file__))')"
COMMIT="$(grep -m1 -o 'ggml-org/llama.cpp@[0-9a-f]*' "$BUILD/llama_cpp_python-$VERSION/CHANGELOG.md" 2>/dev/null | cut -d@ -f2 || true)"
cat >"$VENV/versions.json" <<EOF
{"llamaCppPython": "$(installed_version)", "llamaCppCommit": "${COMMIT:-unknown}", "cmakeArgs": "${CMAKE_ARGS:-}", "site": "$SITE", "llamaServer": $([ -x "$VENV/bin/llama-server" ] && echo true || echo false)}
EOF
log "ready: $VENV ($(cat "$VENV/versions.json"))"
