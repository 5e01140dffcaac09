#!/usr/bin/env bash
# `make run`: the operator on this repository's watches.yaml, outside the cluster, with the same
# ANSIBLE_* settings as the image (docs/local-runner.md).
#
# Cluster:  KUBECONFIG unset -> the local test bed (testbed/cluster.sh up; CRDs installed from
#           deploy/crd). KUBECONFIG set -> that cluster, as it is (install the CRDs with
#           `make install` first).
# Operator: $ANSIBLE_OPERATOR, else bin/ansible-operator, else `ansible-operator` on PATH, else the
#           local runner (python -m testbed.runner). It says which.
# Ctrl-C (or SIGTERM) stops the operator gracefully; a local test bed started here keeps running
# for the next `make run` and for tests (`make cluster-down` stops it).
#
# Environment read here, passed to the role:
#   SIMPLEDB_DNS_SERVER, SIMPLEDB_DNS_PORT  nameserver of the role's DNS probe (the test bed's
#                                           CoreDNS when KUBECONFIG is unset)
#   SIMPLEDB_ENDPOINT_OVERRIDE              host:port the role connects to instead of the
#                                           database Service (e.g. a kubectl port-forward)
#   SIMPLEDB_CLUSTER_DOMAIN                 the cluster's DNS domain (the role's default: cluster.local)
#   RELATED_IMAGE_MARIADB                   operand image (default: docker.io/library/mariadb:
#                                           <major.minor of the local mariadbd>)
#   WATCH_NAMESPACE                         namespaces to watch (default all)
#   OPERATOR_ARGS                           extra flags for `run` (e.g. --max-concurrent-reconciles=4)
#   SIMPLEDB_PYTHON                         the project's Python (default .venv/bin/python)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
say() { echo "make run: $*" >&2; }
die() { echo "make run: ERROR: $*" >&2; exit 1; }

python=${SIMPLEDB_PYTHON:-$root/.venv/bin/python}
[ -x "$python" ] || die "no Python at $python: run 'make venv' (or set SIMPLEDB_PYTHON)"
venv_bin=$(dirname "$python")
[ -f watches.yaml ] || die "no watches.yaml in $root"

# --- the cluster ---------------------------------------------------------------------------
if [ -z "${KUBECONFIG:-}" ]; then
  [ -x testbed/cluster.sh ] || die "testbed/cluster.sh is missing: set KUBECONFIG to run against another cluster"
  say "KUBECONFIG is not set: starting the local test bed (testbed/cluster.sh up)"
  testbed/cluster.sh up
  eval "$(testbed/cluster.sh env)"
  [ -n "${WATCH_NAMESPACE:-}" ] || say "note: watching every namespace, test runs' ones included;" \
    "set WATCH_NAMESPACE=<yours> while tests use the same test bed"
  if [ -f deploy/crd/kustomization.yaml ]; then
    say "installing the CRDs (kubectl apply --server-side -k deploy/crd)"
    kubectl apply --server-side --force-conflicts -k deploy/crd >&2
  else
    say "deploy/crd is not there yet: the CRDs are not installed; SimpleDB objects cannot be created"
  fi
else
  say "running against KUBECONFIG=$KUBECONFIG (CRDs: make install)"
  if [ -z "${SIMPLEDB_ENDPOINT_OVERRIDE:-}${SIMPLEDB_DNS_SERVER:-}" ]; then
    say "note: the operator runs outside that cluster; if it cannot reach the database pods, set" \
      "SIMPLEDB_ENDPOINT_OVERRIDE=host:port (e.g. a kubectl port-forward) and SIMPLEDB_DNS_SERVER/SIMPLEDB_DNS_PORT"
  fi
fi

# --- the environment of the image ----------------------------------------------------------
if [ -z "${RELATED_IMAGE_MARIADB:-}" ]; then
  mariadbd=$(command -v mariadbd || echo /usr/sbin/mariadbd)
  engine=$("$mariadbd" --version 2>/dev/null | sed -nE 's/.*Ver ([0-9]+\.[0-9]+)\..*/\1/p' || true)
  [ -n "$engine" ] || die "cannot read the local mariadbd's version; set RELATED_IMAGE_MARIADB"
  RELATED_IMAGE_MARIADB=docker.io/library/mariadb:$engine
fi
export RELATED_IMAGE_MARIADB
export ANSIBLE_GATHERING=explicit
export ANSIBLE_LIBRARY=$root/plugins/modules
export ANSIBLE_MODULE_UTILS=$root/plugins/module_utils
export ANSIBLE_ROLES_PATH=$root/roles
export VIRTUAL_ENV=$(dirname "$venv_bin")
export PATH=$venv_bin:$PATH  # ansible-runner and ansible-playbook of the project's Python
export PYTHONPATH=$root${PYTHONPATH:+:$PYTHONPATH}
for name in SIMPLEDB_DNS_SERVER SIMPLEDB_DNS_PORT SIMPLEDB_ENDPOINT_OVERRIDE SIMPLEDB_CLUSTER_DOMAIN WATCH_NAMESPACE; do
  [ -z "${!name:-}" ] || export "${name?}"
done

# --- the operator --------------------------------------------------------------------------
if [ -n "${ANSIBLE_OPERATOR:-}" ]; then
  [ -x "$ANSIBLE_OPERATOR" ] || die "ANSIBLE_OPERATOR=$ANSIBLE_OPERATOR is not an executable"
  operator=("$ANSIBLE_OPERATOR" run)
elif [ -x bin/ansible-operator ]; then
  operator=("$root/bin/ansible-operator" run)
elif command -v ansible-operator >/dev/null; then
  operator=("$(command -v ansible-operator)" run)
else
  operator=("$python" -m testbed.runner run)
fi
if [ "${operator[1]}" = "-m" ]; then
  say "operator: the local runner (python -m testbed.runner); ANSIBLE_OPERATOR=/path/to/ansible-operator runs the real binary"
else
  say "operator: ${operator[0]} (the real ansible-operator)"
fi
say "KUBECONFIG=$KUBECONFIG WATCH_NAMESPACE=${WATCH_NAMESPACE:-<all>} RELATED_IMAGE_MARIADB=$RELATED_IMAGE_MARIADB" \
  "SIMPLEDB_DNS_SERVER=${SIMPLEDB_DNS_SERVER:-} SIMPLEDB_DNS_PORT=${SIMPLEDB_DNS_PORT:-}" \
  "SIMPLEDB_ENDPOINT_OVERRIDE=${SIMPLEDB_ENDPOINT_OVERRIDE:-}"

# Probes on loopback only; metrics off (OPERATOR_ARGS can change both: later flags win).
# shellcheck disable=SC2206 # OPERATOR_ARGS is a list of flags
args=(--watches-file="$root/watches.yaml" --reconcile-period=0s
  --health-probe-bind-address=127.0.0.1:6789 --metrics-bind-address=0 ${OPERATOR_ARGS:-})

# Its own session: Ctrl-C in the terminal reaches this script, which sends the operator one
# SIGTERM (a second signal would make it exit at once, without letting runs finish).
setsid "${operator[@]}" "${args[@]}" &
pid=$!
stop() { kill -TERM "$pid" 2>/dev/null || true; }
trap stop INT TERM
status=0
# `wait` returns early when a trapped signal arrives; wait again until the operator has exited.
while kill -0 "$pid" 2>/dev/null; do
  wait "$pid" && status=0 || status=$?
done
trap - INT TERM
exit "$status"
