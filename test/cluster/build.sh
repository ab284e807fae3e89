#!/usr/bin/env bash
# Builds the local test control plane from source into $AUTOGLM_HOME/cluster/bin:
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl  (k8s.io/kubernetes, pinned in go/go.mod)
#   etcd                                                               (go.etcd.io/etcd/server/v3, same go.mod)
#   kwok                                                               (sigs.k8s.io/kwok, KWOK_VERSION below)
# Idempotent: a stamp file records what was built; a binary is rebuilt only when its pin changed
# or it is missing. Go's build cache (~/.cache/go-build) and module cache (~/go/pkg/mod) make a
# rebuild after a pin change incremental.
set -euo pipefail
here="$(cd "$(dirname "$(readlink -f "$0")")" && pwd)"
export AUTOGLM_HOME="${AUTOGLM_HOME:-$HOME/.cache/autoglm}"
bin="${AUTOGLM_CLUSTER_BIN:-$AUTOGLM_HOME/cluster/bin}"
KWOK_VERSION=v0.7.0

export PATH="$PATH:/usr/local/go/bin"
export GOTOOLCHAIN=local GOFLAGS="${GOFLAGS:--buildvcs=false}"
command -v go >/dev/null || {
  echo "build.sh: go not found (expected /usr/local/go/bin/go)" >&2
  exit 1
}

log() { echo "[cluster/build $(date +%H:%M:%S)] $*" >&2; }

modver() { awk -v m="$1" '$1 == m && $2 ~ /^v/ { print $2; exit }' "$here/go/go.mod"; }
k8s_version="$(modver k8s.io/kubernetes)"
etcd_version="$(modver go.etcd.io/etcd/server/v3)"
pin_hash="$(cat "$here/go/go.mod" "$here/go/go.sum" | sha256sum | cut -c1-16)"
go_version="$(go env GOVERSION)"

stamp="$bin/.stamp"
mkdir -p "$bin"
touch "$stamp"

# One stamp line per binary: "<name> <what it was built from>".
want() {
  case "$1" in
    kwok) echo "kwok sigs.k8s.io/kwok@$KWOK_VERSION $go_version" ;;
    etcd) echo "etcd go.etcd.io/etcd/server/v3@$etcd_version $pin_hash $go_version" ;;
    *) echo "$1 k8s.io/kubernetes@$k8s_version $pin_hash $go_version" ;;
  esac
}
fresh() { [[ -x "$bin/$1" ]] && grep -qxF "$(want "$1")" "$stamp"; }
record() {
  local rest
  rest="$(grep -v "^$1 " "$stamp" || true)"
  { [[ -n "$rest" ]] && echo "$rest"; want "$1"; } >"$stamp.tmp"
  mv "$stamp.tmp" "$stamp"
}

minor="${k8s_version#v1.}"
minor="${minor%%.*}"
vpkg=k8s.io/component-base/version
k8s_ldflags="-s -w -X $vpkg.gitVersion=$k8s_version -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$minor"
k8s_ldflags+=" -X $vpkg.gitTreeState=clean -X $vpkg.buildDate=1970-01-01T00:00:00Z"
k8s_ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$k8s_version"

build_go() { # name package ldflags
  local name="$1" pkg="$2" ldflags="$3" t0=$SECONDS
  if fresh "$name"; then
    log "$name: up to date ($(want "$name"))"
    return
  fi
  log "$name: building $pkg ..."
  (cd "$here/go" && go build -trimpath -ldflags="$ldflags" -o "$bin/$name.tmp" "$pkg")
  mv "$bin/$name.tmp" "$bin/$name"
  record "$name"
  log "$name: built in $((SECONDS - t0))s"
}

build_kwok() {
  local t0=$SECONDS
  if fresh kwok; then
    log "kwok: up to date ($(want kwok))"
    return
  fi
  log "kwok: building sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION ..."
  local tmp
  tmp="$(mktemp -d)"
  GOBIN="$tmp" go install -trimpath -ldflags="-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  mv "$tmp/kwok" "$bin/kwok"
  rmdir "$tmp"
  record kwok
  log "kwok: built in $((SECONDS - t0))s"
}

t_all=$SECONDS
log "pins: kubernetes $k8s_version, etcd $etcd_version, kwok $KWOK_VERSION, $go_version -> $bin"
build_go etcd go.etcd.io/etcd/server/v3 "-s -w"
build_go kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$k8s_ldflags"
build_go kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager "$k8s_ldflags"
build_go kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler "$k8s_ldflags"
build_go kubectl k8s.io/kubernetes/cmd/kubectl "$k8s_ldflags"
build_kwok
log "all binaries ready in $((SECONDS - t_all))s"
