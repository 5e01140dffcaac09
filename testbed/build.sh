#!/usr/bin/env bash
# Builds the test bed's binaries from Go modules into a cache outside the repository:
#   $SIMPLEDB_CACHE/testbed/bin/<component>-<version>/
# Each component is built only when its directory is missing, so a warm run takes seconds.
# Usage: testbed/build.sh [--print-bindir]   (SIMPLEDB_CACHE defaults to ~/.cache/simpledb)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=testbed/versions.env
source "$here/versions.env"

cache=${SIMPLEDB_CACHE:-$HOME/.cache/simpledb}/testbed
bindir=$cache/bin
workdir=$cache/work
logdir=$cache/logs
mkdir -p "$bindir" "$workdir" "$logdir"

export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
# Builds share the two cores; a component's own compile already uses both.
export GOMAXPROCS=${GOMAXPROCS:-$(nproc)}

if [ "${1:-}" = "--print-bindir" ]; then echo "$bindir"; exit 0; fi

# Concurrent callers (make deps, testbed/cluster.sh up from several test runs) wait for one
# build instead of racing on the same <component>.tmp directory.
exec {build_lock}>"$cache/.build.lock"
flock "$build_lock"

step_no=0
steps_total=5
started=$(date +%s)

# run_step NAME DIR FUNCTION ARGS...: runs FUNCTION DIR.tmp ARGS, logging to $logdir/NAME.log;
# DIR appears only once the whole step succeeded, so an interrupted build is redone.
run_step() {
  local name=$1 out=$2; shift 2
  step_no=$((step_no + 1))
  if [ -d "$out" ]; then
    echo "[$step_no/$steps_total] $name: cached ($out)"
    return 0
  fi
  local log=$logdir/$name.log t0
  t0=$(date +%s)
  echo "[$step_no/$steps_total] $name: building (log: $log) ..."
  local build=$1; shift
  if ! "$build" "$out.tmp" "$@" >"$log" 2>&1; then
    echo "testbed build FAILED at step '$name'. Last lines of $log:" >&2
    tail -n 30 "$log" >&2
    rm -rf "$out.tmp"
    exit 1
  fi
  mv "$out.tmp" "$out"
  echo "[$step_no/$steps_total] $name: done in $(( $(date +%s) - t0 ))s"
}

# Replaces every `=> ./local/path` in MODULE@VERSION's go.mod with the published module
# at STAGING_VERSION, so that the wrapper module can build the original's commands.
write_replaces() {
  local module=$1 version=$2 staging_version=$3 gomod
  gomod=$(go mod download -json "$module@$version" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  python3 - "$gomod" "$staging_version" <<'PY'
import re, sys
path, version = sys.argv[1], sys.argv[2]
for line in open(path):
    m = re.match(r'\s*(?:replace\s+)?(\S+)\s+=>\s+\./?\.?\.?/', line)
    if m and "FORBIDDEN" not in line:
        print(f"replace {m.group(1)} => {m.group(1)} {version}")
PY
}

build_kubernetes() {
  local out=$1 src=$workdir/kubernetes-$KUBERNETES_VERSION
  local staging_version=v0${KUBERNETES_VERSION#v1}
  rm -rf "$src" && mkdir -p "$src" "$out"
  cd "$src"
  {
    echo "module simpledb.local/testbed/kubernetes"
    echo "go 1.26.0"
    echo "godebug default=go1.26"
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    write_replaces k8s.io/kubernetes "$KUBERNETES_VERSION" "$staging_version"
  } >go.mod
  cat >tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  go mod tidy
  local major minor ldflags
  major=${KUBERNETES_VERSION#v}; major=${major%%.*}
  minor=${KUBERNETES_VERSION#v*.}; minor=${minor%%.*}
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  done
  for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    echo "go build $cmd"
    go build -trimpath -ldflags "$ldflags" -o "$out/$cmd" "k8s.io/kubernetes/cmd/$cmd"
  done
}

build_etcd() {
  local out=$1 src=$workdir/etcd-$ETCD_VERSION
  rm -rf "$src" && mkdir -p "$src" "$out"
  cd "$src"
  {
    echo "module simpledb.local/testbed/etcd"
    echo "go 1.26.0"
    echo "require go.etcd.io/etcd/server/v3 $ETCD_VERSION"
    write_replaces go.etcd.io/etcd/server/v3 "$ETCD_VERSION" "$ETCD_VERSION"
  } >go.mod
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >tools.go
  go mod tidy
  go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3
}

go_install() {
  local out=$1; shift
  mkdir -p "$out"
  GOBIN=$out go install -trimpath -ldflags "-s -w" "$@"
}

run_step kubernetes "$bindir/kubernetes-$KUBERNETES_VERSION" build_kubernetes
run_step etcd "$bindir/etcd-$ETCD_VERSION" build_etcd
run_step kwok "$bindir/kwok-$KWOK_VERSION" go_install \
  "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"
run_step coredns "$bindir/coredns-$COREDNS_VERSION" go_install "github.com/coredns/coredns@$COREDNS_VERSION"
run_step minio "$bindir/minio-$MINIO_VERSION" go_install "github.com/minio/minio@$MINIO_VERSION"

echo "testbed binaries ready in $bindir ($(( $(date +%s) - started ))s; cache $(du -sh "$cache" | cut -f1))"
