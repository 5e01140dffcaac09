#!/usr/bin/env bash
# The local test bed (design section 8): a kwok control plane from locally built binaries,
# a network namespace that holds every pod IP, cluster DNS (CoreDNS) on loopback, a pool of
# hostPath PersistentVolumes and the pod runtime that runs a real mariadbd per MariaDB pod.
#
# Usage: testbed/cluster.sh up|down|status|env
#   up      build the binaries if needed, then start whatever is not running (idempotent)
#   down    stop everything this instance started and remove its state (idempotent)
#   status  print each component's state; exit 0 only when all are up
#   env     print `export ...` lines for eval: KUBECONFIG, PATH (kubectl), DNS address
#
# Environment (read by `up` of a new instance, then recorded in <state>/testbed.env):
#   SIMPLEDB_CACHE                 cache root (default ~/.cache/simpledb); binaries in <cache>/testbed/bin
#   SIMPLEDB_TESTBED_STATE         state dir (default <cache>/testbed/state)
#   SIMPLEDB_TESTBED_NAME          instance name: kwok cluster, netns <name>-pods, veths (default simpledb)
#   SIMPLEDB_TESTBED_POD_CIDR      pod IPs, routed into the netns (default 10.244.0.0/16)
#   SIMPLEDB_TESTBED_SERVICE_CIDR  ClusterIPs, routed `unreachable` on the host (default 10.96.0.0/16)
#   SIMPLEDB_TESTBED_LINK_PREFIX   the veth /30: <prefix>.1 host, <prefix>.2 netns and node IP (default 10.243.255)
#   SIMPLEDB_DNS_PORT              CoreDNS port on 127.0.0.1 (default 10053, or a free port if taken)
#   SIMPLEDB_TESTBED_PV_POOL       size=count,... of Available PVs to keep (default 1Gi=10,2Gi=4,5Gi=4,10Gi=6,20Gi=2)
#   SIMPLEDB_PYTHON                Python with the project's requirements (default <repo>/.venv/bin/python)
#   SIMPLEDB_TESTBED_SESSION       pid of a test session: `up` registers it; `down` then stops the
#                                  test bed only when no other registered session is alive
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
# shellcheck source=testbed/versions.env
source "$here/versions.env"

cache=${SIMPLEDB_CACHE:-$HOME/.cache/simpledb}
state=${SIMPLEDB_TESTBED_STATE:-$cache/testbed/state}
bindir=$("$here/build.sh" --print-bindir)
kube_bin=$bindir/kubernetes-$KUBERNETES_VERSION
kwokctl=$bindir/kwok-$KWOK_VERSION/kwokctl
kubectl=$kube_bin/kubectl
coredns=$bindir/coredns-$COREDNS_VERSION/coredns
kubeconfig=$state/kubeconfig
instance_env=$state/testbed.env
export KWOK_WORKDIR=$state/kwok

log() { echo "testbed: $*" >&2; }
die() { echo "testbed: ERROR: $*" >&2; exit 1; }

# Instance settings: recorded by the first `up`, so later commands act on the same instance
# whatever the caller's environment says.
load_instance() {
  if [ -f "$instance_env" ]; then
    # shellcheck source=/dev/null
    source "$instance_env"
  else
    name=${SIMPLEDB_TESTBED_NAME:-simpledb}
    pod_cidr=${SIMPLEDB_TESTBED_POD_CIDR:-10.244.0.0/16}
    service_cidr=${SIMPLEDB_TESTBED_SERVICE_CIDR:-10.96.0.0/16}
    link_prefix=${SIMPLEDB_TESTBED_LINK_PREFIX:-10.243.255}
    dns_port=${SIMPLEDB_DNS_PORT:-}
    pv_pool=${SIMPLEDB_TESTBED_PV_POOL:-1Gi=10,2Gi=4,5Gi=4,10Gi=6,20Gi=2}
  fi
  [[ $name =~ ^[a-z][a-z0-9]{0,12}$ ]] || die "SIMPLEDB_TESTBED_NAME must be 1-13 lowercase letters/digits (veth names are at most 15 characters): '$name'"
  netns=$name-pods
  veth_host=$name-h
  veth_pod=$name-p
  host_ip=$link_prefix.1
  node_ip=$link_prefix.2
  node_name=$name-node
  context=kwok-$name
}

save_instance() {
  mkdir -p "$state"
  cat >"$instance_env.tmp" <<EOF
name=$name
pod_cidr=$pod_cidr
service_cidr=$service_cidr
link_prefix=$link_prefix
dns_port=$dns_port
pv_pool=$pv_pool
EOF
  mv "$instance_env.tmp" "$instance_env"
}

port_free() { ! ss -Hltn "sport = :$1" | grep -q .; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# run_clean CMD...: runs CMD with only stdin, stdout and stderr open, so that the daemons it
# starts hold neither this script's lock nor its caller's pipes.
run_clean() {
  (
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null
    done
    exec "$@"
  )
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# stop_pidfile FILE [GRACE_SECONDS]: SIGTERM, wait, then SIGKILL the process of FILE.
stop_pidfile() {
  local file=$1 grace=${2:-10} pid i
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

# ---------------------------------------------------------------------------------------
# The pod network: every pod IP is local inside the netns; the host reaches it over a veth.

network_up() {
  [ "$(id -u)" -eq 0 ] || die "the pod network namespace needs root (CAP_NET_ADMIN); run as root"
  command -v ip >/dev/null || die "iproute2 (ip) is missing: run hack/system-deps.sh"
  # Another instance with the same pod CIDR would lose its route to ours: refuse instead.
  local taken
  taken=$(ip route show exact "$pod_cidr" 2>/dev/null | grep -v " dev $veth_host" || true)
  [ -z "$taken" ] || die "the pod CIDR $pod_cidr is already routed ($taken), probably by another test bed instance: choose another SIMPLEDB_TESTBED_POD_CIDR (and SERVICE_CIDR, LINK_PREFIX)"
  ip netns list | grep -qw "^$netns" || ip netns add "$netns"
  ip -n "$netns" link set lo up
  if ! ip link show "$veth_host" >/dev/null 2>&1; then
    ip link add "$veth_host" type veth peer name "$veth_pod" netns "$netns"
  fi
  ip addr replace "$host_ip/30" dev "$veth_host"
  ip link set "$veth_host" up
  ip -n "$netns" addr replace "$node_ip/30" dev "$veth_pod"
  ip -n "$netns" link set "$veth_pod" up
  # Servers inside may bind any pod IP: the whole pod range is local in the namespace.
  ip -n "$netns" route replace local "$pod_cidr" dev lo
  ip route replace "$pod_cidr" via "$node_ip" dev "$veth_host"
  # No kube-proxy: a packet toward a ClusterIP must fail here, never leave the machine.
  ip route replace unreachable "$service_cidr"
  # Servers inside the namespace (a replica resolving its primary) ask CoreDNS on the host end
  # of the veth: `ip netns exec` bind-mounts this file over /etc/resolv.conf.
  mkdir -p "/etc/netns/$netns"
  printf 'nameserver %s\nsearch svc.cluster.local cluster.local\noptions ndots:5\n' "$host_ip" \
    >"/etc/netns/$netns/resolv.conf"
  network_check || die "the pod network namespace $netns is not as expected (see above)"
}

# network_check: succeeds only when the namespace and every route are in place.
network_check() {
  local probe_pod probe_svc ok=0
  probe_pod=$(python3 -c "import ipaddress,sys; print(ipaddress.ip_network(sys.argv[1])[10])" "$pod_cidr")
  probe_svc=$(python3 -c "import ipaddress,sys; print(ipaddress.ip_network(sys.argv[1])[10])" "$service_cidr")
  if ! ip netns list 2>/dev/null | grep -qw "^$netns"; then
    echo "  network namespace $netns: missing" >&2; return 1
  fi
  ip -n "$netns" route get "$probe_pod" 2>/dev/null | grep -q "^local $probe_pod dev lo" ||
    { echo "  netns $netns: $pod_cidr is not local (ip -n $netns route get $probe_pod)" >&2; ok=1; }
  ip route get "$probe_pod" 2>/dev/null | grep -q "via $node_ip dev $veth_host" ||
    { echo "  host: $pod_cidr is not routed via $veth_host (ip route get $probe_pod)" >&2; ok=1; }
  ! ip route get "$probe_svc" >/dev/null 2>&1 ||
    { echo "  host: $service_cidr is not unreachable (ip route get $probe_svc)" >&2; ok=1; }
  return $ok
}

network_down() {
  # Only this instance's routes: another instance may use the same CIDRs (up refuses that, but
  # a `down` must not break the instance that got there first).
  if ip link show "$veth_host" >/dev/null 2>&1; then
    ip route del unreachable "$service_cidr" 2>/dev/null || true
    ip route del "$pod_cidr" via "$node_ip" dev "$veth_host" 2>/dev/null || true
    ip link del "$veth_host" 2>/dev/null || true
  fi
  if ip netns list 2>/dev/null | grep -qw "^$netns"; then
    ip netns del "$netns"
  fi
  rm -rf "/etc/netns/$netns"
}

# ---------------------------------------------------------------------------------------
# The control plane (kwokctl, binary runtime).

kube() { "$kubectl" --kubeconfig "$kubeconfig" --context "$context" "$@"; }

apiserver_ready() { [ -f "$kubeconfig" ] && kube get --raw /readyz --request-timeout=5s >/dev/null 2>&1; }

# The only variables of testbed/kwok/kwok.yaml (the Stages' templates use $ too).
kwok_variables='${BINDIR} ${KUBE_BIN} ${KUBERNETES_VERSION} ${ETCD_VERSION} ${KWOK_VERSION} ${SERVICE_CIDR} ${POD_CIDR} ${NODE_IP}'

render_kwok_config() {
  BINDIR=$bindir KUBERNETES_VERSION=$KUBERNETES_VERSION ETCD_VERSION=$ETCD_VERSION \
    KWOK_VERSION=$KWOK_VERSION SERVICE_CIDR=$service_cidr POD_CIDR=$pod_cidr NODE_IP=$node_ip \
    KUBE_BIN=$kube_bin envsubst "$kwok_variables" <"$here/kwok/kwok.yaml"
  cat "$here/kwok/stages.yaml"
}

# A cluster created from another testbed/kwok/ (an older checkout) is recreated, unless another
# test session is using it.
replace_outdated_cluster() {
  [ -d "$KWOK_WORKDIR/clusters/$name" ] && [ -f "$state/kwok.yaml" ] || return 0
  cmp -s <(render_kwok_config) "$state/kwok.yaml" && return 0
  local others
  others=$(live_sessions | grep -vx "${SIMPLEDB_TESTBED_SESSION:-none}" | tr '\n' ' ' || true)
  [ -z "$others" ] || die "the running test bed was created from another testbed/kwok configuration and is used by the test sessions (pids) $others; when they finish: testbed/cluster.sh down && testbed/cluster.sh up"
  log "the running test bed was created from another testbed/kwok configuration: recreating it"
  stop_everything
}

cluster_up() {
  mkdir -p "$KWOK_WORKDIR"
  render_kwok_config >"$state/kwok.yaml"
  local cluster_dir=$KWOK_WORKDIR/clusters/$name
  if [ -d "$cluster_dir" ] && ! apiserver_ready; then
    log "restarting the stopped cluster $name"
    run_clean "$kwokctl" start cluster --name "$name" --config "$state/kwok.yaml" >>"$state/logs/kwokctl.log" 2>&1 ||
      die "kwokctl start cluster failed: see $state/logs/kwokctl.log"
  elif [ ! -d "$cluster_dir" ]; then
    log "creating the kwok cluster $name"
    run_clean "$kwokctl" create cluster --name "$name" --runtime binary --config "$state/kwok.yaml" \
      --kubeconfig "$kubeconfig" --wait 120s >>"$state/logs/kwokctl.log" 2>&1 ||
      die "kwokctl create cluster failed: see $state/logs/kwokctl.log and $cluster_dir/logs/"
  fi
  local i
  for ((i = 0; i < 600; i++)); do
    apiserver_ready && break
    sleep 0.1
  done
  apiserver_ready || die "kube-apiserver is not ready after 60 s: see $cluster_dir/logs/kube-apiserver.log"
}

# The kwok node (its InternalIP is inside the pod netns) and the default StorageClass. The pod
# runtime creates the pool of PersistentVolumes for it (testbed/podruntime/volumes.py).
objects_up() {
  kube apply --server-side --field-manager=testbed -f - >/dev/null <<EOF
apiVersion: v1
kind: Node
metadata:
  name: $node_name
  annotations:
    kwok.x-k8s.io/node: fake
  labels:
    kubernetes.io/hostname: $node_name
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: kubernetes.io/no-provisioner
allowVolumeExpansion: true
reclaimPolicy: Retain
volumeBindingMode: WaitForFirstConsumer
EOF
  local i
  for ((i = 0; i < 300; i++)); do
    [ "$(kube get node "$node_name" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ] && break
    sleep 0.1
  done
  local address
  address=$(kube get node "$node_name" -o jsonpath='{.status.addresses[?(@.type=="InternalIP")].address}')
  [ "$address" = "$node_ip" ] || die "node $node_name has InternalIP '$address', expected $node_ip (inside $netns)"
}

# ---------------------------------------------------------------------------------------
# Cluster DNS: CoreDNS's kubernetes plugin on loopback; it forwards nothing anywhere.

dns_ready() {
  pid_alive "$state/coredns.pid" &&
    curl -fsS --max-time 2 "http://127.0.0.1:$(cat "$state/coredns.ready-port")/ready" >/dev/null 2>&1
}

dns_up() {
  dns_ready && return 0
  stop_pidfile "$state/coredns.pid"
  if [ -z "$dns_port" ]; then
    if port_free 10053; then dns_port=10053; else dns_port=$(free_port); fi
    save_instance
  fi
  port_free "$dns_port" || die "port $dns_port for CoreDNS is taken (set SIMPLEDB_DNS_PORT, or run down first)"
  local ready_port
  ready_port=$(free_port)
  echo "$ready_port" >"$state/coredns.ready-port"
  cat >"$state/Corefile" <<EOF
cluster.local:$dns_port {
    bind 127.0.0.1
    kubernetes cluster.local {
        kubeconfig $kubeconfig $context
        ttl 1
    }
    ready 127.0.0.1:$ready_port
    errors
    log . "{remote} {type} {name} {rcode} {duration}"
}
# For processes inside the pod network namespace (their resolv.conf points here).
cluster.local:53 {
    bind $host_ip
    kubernetes cluster.local {
        kubeconfig $kubeconfig $context
        ttl 1
    }
    errors
}
EOF
  run_clean setsid --fork "$coredns" -conf "$state/Corefile" -pidfile "$state/coredns.pid" \
    >>"$state/logs/coredns.log" 2>&1 </dev/null
  local i
  for ((i = 0; i < 300; i++)); do
    dns_ready && return 0
    sleep 0.1
  done
  die "CoreDNS is not ready after 30 s: see $state/logs/coredns.log"
}

dns_down() { stop_pidfile "$state/coredns.pid"; }

# ---------------------------------------------------------------------------------------
# The pod runtime (python -m testbed.podruntime): volume pool, a mariadbd per MariaDB pod.

runtime_ready() { pid_alive "$state/podruntime.pid" && [ -f "$state/podruntime.ready" ]; }

runtime_up() {
  runtime_ready && return 0
  local python=${SIMPLEDB_PYTHON:-$repo/.venv/bin/python}
  [ -x "$python" ] || die "no Python for the pod runtime at $python: run 'make venv' or set SIMPLEDB_PYTHON"
  stop_pidfile "$state/podruntime.pid" 120
  rm -f "$state/podruntime.ready"
  (cd "$repo" && run_clean setsid --fork "$python" -m testbed.podruntime --state-dir "$state" \
    --kubeconfig "$kubeconfig" --context "$context" --pv-pool "$pv_pool" --node-name "$node_name" --netns "$netns" \
    >>"$state/logs/podruntime.log" 2>&1 </dev/null)
  local i
  for ((i = 0; i < 600; i++)); do
    runtime_ready && return 0
    sleep 0.1
  done
  die "the pod runtime is not ready after 60 s: see $state/logs/podruntime.log"
}

# The runtime stops its servers on SIGTERM (each within its pod's grace period, at most 30 s);
# a server that survives a killed runtime is killed by its pid file.
runtime_down() {
  stop_pidfile "$state/podruntime.pid" 180
  local file pid
  for file in "$state"/run/*/mysqld.pid; do
    [ -f "$file" ] || continue
    pid=$(cat "$file")
    if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "mariadbd.*--pid-file=$file"; then
      log "killing mariadbd $pid left by the pod runtime"
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
}

# ---------------------------------------------------------------------------------------

components_status() {
  local rc=0
  if network_check 2>/dev/null; then echo "network: up (netns $netns, pods $pod_cidr, services $service_cidr unreachable)"
  else echo "network: down"; rc=1; fi
  if apiserver_ready; then echo "control plane: up (kubeconfig $kubeconfig)"
  else echo "control plane: down"; rc=1; fi
  if [ -f "$state/coredns.ready-port" ] && dns_ready; then echo "dns: up (127.0.0.1:$dns_port)"
  else echo "dns: down"; rc=1; fi
  if runtime_ready; then echo "pod runtime: up (log $state/logs/podruntime.log)"
  else echo "pod runtime: down"; rc=1; fi
  return $rc
}

# Test sessions that use the test bed register here (SIMPLEDB_TESTBED_SESSION=<pid>), so that
# `down` from one session leaves the test bed up while another still uses it.
sessions=$state/sessions

live_sessions() {
  local file
  for file in "$sessions"/*; do
    [ -f "$file" ] || continue
    if kill -0 "${file##*/}" 2>/dev/null; then echo "${file##*/}"; else rm -f "$file"; fi
  done
}

cmd_up() {
  local t0=$SECONDS
  "$here/build.sh" >&2
  mkdir -p "$state/logs" "$state/volumes" "$state/pods" "$sessions"
  save_instance
  [ -z "${SIMPLEDB_TESTBED_SESSION:-}" ] || : >"$sessions/$SIMPLEDB_TESTBED_SESSION"
  replace_outdated_cluster
  if components_status >/dev/null; then
    log "already up"
    return 0
  fi
  network_up
  cluster_up
  objects_up
  dns_up
  runtime_up
  components_status >/dev/null || { components_status >&2; die "not every component came up"; }
  log "up in $((SECONDS - t0))s: eval \"\$(testbed/cluster.sh env)\" to use it"
}

cmd_down() {
  if [ ! -f "$instance_env" ]; then
    log "nothing to stop (no test bed at $state)"
    return 0
  fi
  if [ -n "${SIMPLEDB_TESTBED_SESSION:-}" ]; then
    rm -f "$sessions/$SIMPLEDB_TESTBED_SESSION"
    local others
    others=$(live_sessions | tr '\n' ' ')
    if [ -n "$others" ]; then
      log "left up: still used by the test sessions (pids) $others"
      return 0
    fi
  fi
  stop_everything
  network_down
  rm -rf "$state"
  log "down"
}

# Stops the pod runtime (and every server), CoreDNS and the control plane; deletes the cluster.
stop_everything() {
  runtime_down
  dns_down
  local cluster_dir=$KWOK_WORKDIR/clusters/$name pids=() file
  if [ -d "$cluster_dir" ]; then
    for file in "$cluster_dir"/pids/*.pid; do
      [ -f "$file" ] && pids+=("$(cat "$file")")
    done
    "$kwokctl" delete cluster --name "$name" --kubeconfig "$kubeconfig" >/dev/null 2>&1 ||
      log "kwokctl delete cluster failed; stopping its processes directly"
    # kwokctl SIGKILLs its components; make sure none survives a failed delete either.
    [ ${#pids[@]} -eq 0 ] || kill -9 "${pids[@]}" 2>/dev/null || true
  fi
  rm -rf "$KWOK_WORKDIR" "$state/kwok.yaml" "$state/volumes" "$state/pods" "$state/run"
}

cmd_env() {
  [ -f "$instance_env" ] || die "no test bed at $state: run testbed/cluster.sh up"
  printf 'export KUBECONFIG=%q;\n' "$kubeconfig"
  printf 'export PATH=%q:"$PATH";\n' "$kube_bin"
  printf 'export SIMPLEDB_TESTBED_STATE=%q;\n' "$state"
  printf 'export SIMPLEDB_DNS_SERVER=127.0.0.1;\n'
  printf 'export SIMPLEDB_DNS_PORT=%q;\n' "$dns_port"
}

main() {
  local cmd=${1:-}
  case $cmd in
    up | down | status | env) ;;
    *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
  esac
  mkdir -p "$(dirname "$state")"
  # One command at a time per instance: concurrent test runs share the test bed.
  exec {lock_fd}>"$state.lock"
  flock -w 600 "$lock_fd" || die "another testbed/cluster.sh holds $state.lock"
  load_instance
  case $cmd in
    up) cmd_up ;;
    down) cmd_down ;;
    status)
      [ -f "$instance_env" ] || { echo "not up (no test bed at $state)"; exit 1; }
      components_status
      ;;
    env) cmd_env ;;
  esac
}

main "$@"
