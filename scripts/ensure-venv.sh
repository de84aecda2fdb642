#!/usr/bin/env bash
# Print the path of a virtual environment that holds the pinned dependencies,
# creating it if needed. The venv lives in a cache OUTSIDE the clone
# (FAULTZOO_VENV_CACHE, default ~/.cache/faultzoo/venvs), keyed by the hash of
# the dependency files, so repeated CI runs reuse the ~5.5 GB torch install
# while a fresh machine still builds it. The package itself is (re)installed
# editable from *this* clone on every call (seconds, no dependencies).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
cache="${FAULTZOO_VENV_CACHE:-$HOME/.cache/faultzoo/venvs}"
key="$(cat "$here/requirements/ci.txt" "$here/pyproject.toml" | sha256sum | cut -c1-16)"
venv="$cache/$key"
if [[ ! -f "$venv/.complete" ]]; then
  # A half-built venv (killed install) is never reused: start it again.
  rm -rf "$venv"
  mkdir -p "$cache"
  echo "ensure-venv: building $venv (first run on this machine takes a few minutes)" >&2
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
  "$venv/bin/python" -m pip install --quiet -r "$here/requirements/ci.txt" >&2
  touch "$venv/.complete"
fi
"$venv/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e "$here" >&2
echo "$venv"
