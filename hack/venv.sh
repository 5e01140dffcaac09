#!/usr/bin/env bash
# Creates or refreshes .venv: Python 3.12 (the operator base image's version) with
# requirements/dev.lock. Re-installs only when the lock file changed.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
venv=$top/.venv
stamp=$venv/.dev.lock.sha256
want=$(sha256sum "$top/requirements/dev.lock" | cut -d' ' -f1)

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

find_python() {
  local candidate
  for candidate in "${PYTHON:-}" "$(command -v pyenv >/dev/null && pyenv root)"/versions/3.12*/bin/python3.12 \
                   "$(command -v python3.12 || true)"; do
    [ -n "$candidate" ] && [ -x "$candidate" ] && { echo "$candidate"; return 0; }
  done
  return 1
}
python=$(find_python) || {
  echo "hack/venv.sh: Python 3.12 not found (pyenv versions/3.12*, python3.12 on PATH, or PYTHON=...)." >&2
  exit 1
}
echo "Creating $venv with $("$python" --version) from requirements/dev.lock"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$top/requirements/dev.lock"
echo "$want" >"$stamp"
