#!/usr/bin/env bash
# Builds the Kubernetes + etcd binaries used by scripts/dev-cluster from the pinned Go modules in
# tools/k8s and tools/etcd (through the Go module proxy), into a cache OUTSIDE the repo:
#   $STILT_CLUSTER_CACHE/bin-<k8s version>-<hash of the wrapper modules>/
# Skip-fast: when that directory's .stamp exists, nothing is done.
# Prints the bin directory on stdout (last line). Usage: scripts/cluster-build.sh [--print-dir]
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${STILT_CLUSTER_CACHE:-${HOME:-/root}/.cache/stilt-cluster}
K8S_DIR=$REPO/tools/k8s
ETCD_DIR=$REPO/tools/etcd
BUILD_REV=1   # bump when the build flags below change

# version of a required module, from "require M V" or a line "M V" inside a require block
mod_version() { awk -v m="$1" '{ sub(/^require[ \t]+/, "") } $1 == m && $2 ~ /^v[0-9]/ && !found { print $2; found = 1 }' "$2"; }
k8s_version() { mod_version k8s.io/kubernetes "$K8S_DIR/go.mod"; }
etcd_version() { mod_version go.etcd.io/etcd/server/v3 "$ETCD_DIR/go.mod"; }

K8S_V=$(k8s_version)      # e.g. v1.35.4
ETCD_V=$(etcd_version)    # e.g. v3.6.16
[ -n "$K8S_V" ] && [ -n "$ETCD_V" ] || { echo "cluster-build: cannot read versions from tools/*/go.mod" >&2; exit 1; }
HASH=$( { echo "rev=$BUILD_REV"; cat "$K8S_DIR/go.mod" "$K8S_DIR/go.sum" "$K8S_DIR/tools.go" \
          "$ETCD_DIR/go.mod" "$ETCD_DIR/go.sum" "$ETCD_DIR/tools.go"; } | sha256sum | cut -c1-12)
BIN=$CACHE/bin-${K8S_V#v}-$HASH
STAMP="k8s=$K8S_V etcd=$ETCD_V hash=$HASH rev=$BUILD_REV"
BINARIES=(etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)

stamp_ok() {
  [ -f "$BIN/.stamp" ] && [ "$(cat "$BIN/.stamp")" = "$STAMP" ] || return 1
  local b; for b in "${BINARIES[@]}"; do [ -x "$BIN/$b" ] || return 1; done
}

if [ "${1:-}" = "--print-dir" ]; then echo "$BIN"; exit 0; fi
if stamp_ok; then echo "$BIN"; exit 0; fi

command -v go >/dev/null 2>&1 || PATH=$PATH:/usr/local/go/bin
command -v go >/dev/null 2>&1 || { echo "cluster-build: no Go toolchain (need Go >= 1.26 in PATH or /usr/local/go)" >&2; exit 1; }

mkdir -p "$CACHE"
exec 9>"$CACHE/build.lock"
if ! flock -n 9; then
  echo "cluster-build: another build is running; waiting for it" >&2
  flock 9
fi
if stamp_ok; then echo "$BIN"; exit 0; fi

export GOMODCACHE=$CACHE/gomod GOCACHE=$CACHE/gocache GOTOOLCHAIN=local CGO_ENABLED=0
export GOFLAGS="-mod=readonly -buildvcs=false"
export GOPROXY=${GOPROXY:-$(go env GOPROXY)}
TMP=$BIN.tmp.$$
rm -rf "$TMP"; mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
start=$(date +%s)
echo "cluster-build: building Kubernetes $K8S_V + etcd $ETCD_V into $BIN (cold: ~20-40 min on 2 cores)" >&2

MINOR=${K8S_V#v1.}; MINOR=${MINOR%%.*}
BUILD_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
LDF="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do  # keys of hack/lib/version.sh
  LDF="$LDF -X $p.gitVersion=$K8S_V -X $p.gitMajor=1 -X $p.gitMinor=$MINOR -X $p.gitTreeState=clean"
  LDF="$LDF -X $p.gitCommit=0000000000000000000000000000000000000000 -X $p.buildDate=$BUILD_DATE"
done

( cd "$ETCD_DIR" && go mod download ) >&2
( cd "$ETCD_DIR" && nice -n 19 go build -trimpath -ldflags "-s -w" -o "$TMP/etcd" go.etcd.io/etcd/server/v3 ) >&2
echo "cluster-build: etcd done after $(( $(date +%s) - start ))s" >&2

( cd "$K8S_DIR" && go mod download ) >&2
( cd "$K8S_DIR" && nice -n 19 go build -trimpath -ldflags "$LDF" -o "$TMP/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet \
    k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kubectl ) >&2

for b in "${BINARIES[@]}"; do [ -x "$TMP/$b" ] || { echo "cluster-build: $b missing after build" >&2; exit 1; }; done
# keep pause.c from the Kubernetes module next to the binaries (used to build the pause image)
PAUSE_C=$GOMODCACHE/k8s.io/kubernetes@$K8S_V/build/pause/linux/pause.c
[ -f "$PAUSE_C" ] && cp "$PAUSE_C" "$TMP/pause.c"
echo "$STAMP" > "$TMP/.stamp"
echo "$(( $(date +%s) - start ))" > "$TMP/.build-seconds"
rm -rf "$BIN"; mv "$TMP" "$BIN"; trap - EXIT
# drop binaries of older pins (the Go caches stay for incremental rebuilds)
for old in "$CACHE"/bin-*; do
  [ "$old" = "$BIN" ] || rm -rf "$old"
done
echo "cluster-build: done in $(( $(date +%s) - start ))s" >&2
echo "$BIN"
