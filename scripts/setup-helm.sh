#!/usr/bin/env bash
# Builds (idempotently) the pinned Helm 3 CLI that test/helm uses, from its Go module with
# `go install`, into ${AUTOGLM_HOME:-$HOME/.cache/autoglm}/tools/bin/helm. Only the Go module
# proxy is needed, no release download. The first build takes several minutes on 2 cores; a
# rebuild reuses Go's module and build caches.
#   HELM_VERSION   the helm.sh/helm/v3 module version (default below)
#   GO             the go command (default: go on PATH, else /usr/local/go/bin/go)
# Prints the helm path on stdout; progress goes to stderr.
set -euo pipefail

VERSION="${HELM_VERSION:-v3.22.0}"
HOME_DIR="${AUTOGLM_HOME:-$HOME/.cache/autoglm}"
BIN_DIR="$HOME_DIR/tools/bin"
HELM="$BIN_DIR/helm"
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"

log() { echo "setup-helm: $*" >&2; }

# What the binary was built from: the module version in its build info, and a stamp file that
# this script writes after a build with the -ldflags below (-trimpath keeps them out of the
# build info).
STAMP="$BIN_DIR/.helm-stamp"
built_version() {
  "$GO" version -m "$HELM" 2>/dev/null | awk '$1 == "mod" && $2 == "helm.sh/helm/v3" { print $3 }'
}

if [ -x "$HELM" ] && [ "$(built_version)" = "$VERSION" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$VERSION" ]; then
  log "helm $VERSION ready"
  echo "$HELM"
  exit 0
fi

if [ ! -x "$GO" ]; then
  log "no Go toolchain (looked for '$GO'); helm is built from source with go install"
  exit 1
fi
mkdir -p "$BIN_DIR"
log "building helm $VERSION with $("$GO" env GOVERSION) (several minutes the first time)"
t0=$(date +%s)
# Helm's Makefile stamps versions with -ldflags and `go install` does not, so do what it does:
# its own version (`helm version`, .Capabilities.HelmVersion), and the Kubernetes version that
# `helm template` and `helm lint` assume without a cluster (.Capabilities.KubeVersion, the
# deprecation checks): that of its k8s.io/client-go, v0.X.Y meaning Kubernetes 1.X.
GOMOD="$("$GO" mod download -json "helm.sh/helm/v3@$VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
CLIENT_GO="$(awk '$1 == "k8s.io/client-go" { print $2 }' "$GOMOD")"
K8S_MINOR="$(echo "$CLIENT_GO" | cut -d. -f2)"
if [ -z "$K8S_MINOR" ]; then
  log "could not read k8s.io/client-go's version from $GOMOD"
  exit 1
fi
LDFLAGS="-s -w -X helm.sh/helm/v3/internal/version.version=$VERSION"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  LDFLAGS="$LDFLAGS -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$K8S_MINOR"
done
GOBIN="$BIN_DIR" CGO_ENABLED=0 "$GO" install -trimpath -ldflags "$LDFLAGS" "helm.sh/helm/v3/cmd/helm@$VERSION"
echo "$VERSION" >"$STAMP"
log "helm $VERSION built in $(($(date +%s) - t0))s: $("$HELM" version --short)"
echo "$HELM"
