#!/usr/bin/env bash
# `make ansible-operator`: the ansible-operator release binary in bin/, as the operator-sdk Ansible
# scaffold's Makefile gets it (a GitHub release download for this OS and architecture).
#
# It needs the internet. Without it (this project's sandboxes and CI), it says so and fails;
# `make run` and the tests then use the local runner (testbed/runner), and
# ANSIBLE_OPERATOR=/path/to/ansible-operator points them at a binary obtained elsewhere.
#
# Environment: ANSIBLE_OPERATOR_VERSION (default v1.42.3), ANSIBLE_OPERATOR_RELEASES (the
# releases/download base URL, for a mirror), ANSIBLE_OPERATOR_TIMEOUT (seconds, default 120).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
version=${ANSIBLE_OPERATOR_VERSION:-v1.42.3}
releases=${ANSIBLE_OPERATOR_RELEASES:-https://github.com/operator-framework/ansible-operator-plugins/releases/download}
timeout=${ANSIBLE_OPERATOR_TIMEOUT:-120}
target=$root/bin/ansible-operator

os=$(uname -s | tr '[:upper:]' '[:lower:]')
arch=$(uname -m | sed 's/x86_64/amd64/' | sed 's/aarch64/arm64/')
url=$releases/$version/ansible-operator_${os}_${arch}

if [ -x "$target" ] && "$target" version 2>/dev/null | grep -q "\"$version\""; then
  echo "ansible-operator $version is already in bin/"
  exit 0
fi

mkdir -p "$root/bin"
partial=$(mktemp "$root/bin/.ansible-operator.XXXXXX")
trap 'rm -f "$partial"' EXIT
echo "downloading ansible-operator $version for $os/$arch from $url (timeout ${timeout}s)"
if ! error=$(curl --fail --silent --show-error --location --connect-timeout 10 --max-time "$timeout" \
  --output "$partial" "$url" 2>&1); then
  cat >&2 <<EOF
ansible-operator: download failed: ${error:-curl failed}
  This machine cannot fetch $url
  (no internet access is expected in this project's sandboxes and CI).
  Nothing changed in bin/. 'make run' and the tests use the local runner (testbed/runner);
  to use the real binary, get it where the internet is reachable (or build it from
  operator-framework/ansible-operator-plugins at $version: go build ./cmd/ansible-operator)
  and set ANSIBLE_OPERATOR=/path/to/ansible-operator.
EOF
  exit 1
fi
chmod +x "$partial"
if ! reported=$("$partial" version 2>&1); then
  echo "ansible-operator: the file from $url does not run here: $reported" >&2
  exit 1
fi
mv "$partial" "$target"
trap - EXIT
echo "bin/ansible-operator: $reported"
