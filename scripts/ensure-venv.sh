#!/usr/bin/env bash
# Print the path of this clone's virtual environment, creating it if needed.
#
# Two layers, so that the heavy dependencies are shared but every clone runs its own code:
# - a base venv with the pinned dependencies (requirements/ci.txt, ~6 GB with torch and TensorFlow)
#   in a cache OUTSIDE the clone (FAULTZOO_VENV_CACHE, default ~/.cache/faultzoo/venvs), keyed by
#   the hash of the dependency files; it never holds faultzoo itself;
# - a small venv inside the clone (.venv/) that sees the base's packages through a .pth file and
#   holds the editable install of *this* clone (seconds to make).
# Cached base venvs that the current dependency files no longer name are pruned, newest few kept.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
cache="${FAULTZOO_VENV_CACHE:-$HOME/.cache/faultzoo/venvs}"
keep="${FAULTZOO_VENV_KEEP:-2}"   # older base venvs kept besides the current one
key="$(sha256sum < "$here/requirements/ci.txt" | cut -c1-16)"
base="$cache/$key"
if [[ ! -f "$base/.complete" ]]; then
  # A half-built venv (killed install) is never reused: start it again.
  rm -rf "$base"
  mkdir -p "$cache"
  echo "ensure-venv: building $base (first run on this machine takes a few minutes)" >&2
  "$python" -m venv "$base"
  "$base/bin/python" -m pip install --quiet --upgrade pip >&2
  "$base/bin/python" -m pip install --quiet -r "$here/requirements/ci.txt" >&2
  touch "$base/.complete"
fi
touch "$base/.complete"   # its mtime marks the last use, for pruning
# Prune: every complete base venv but the current one and the $keep most recently used.
# shellcheck disable=SC2012
ls -1t "$cache"/*/.complete 2>/dev/null | sed 's|/.complete$||' | { grep -vx "$base" || true; } \
  | tail -n +"$((keep + 1))" | while read -r old; do
    echo "ensure-venv: pruning unused $old" >&2
    rm -rf "$old"
  done

clone="$here/.venv"
site() { "$1/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'; }
if [[ ! -f "$clone/.base" || "$(cat "$clone/.base")" != "$base" ]]; then
  rm -rf "$clone"
  "$base/bin/python" -m venv --without-pip "$clone"
  # The base's packages (pip and setuptools included) become importable in the clone's venv.
  site "$base" > "$(site "$clone")/_faultzoo_base.pth"
  echo "$base" > "$clone/.base"
fi
if [[ ! -f "$clone/.installed" || "$here/pyproject.toml" -nt "$clone/.installed" ]]; then
  "$clone/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e "$here" >&2
  touch "$clone/.installed"
fi
echo "$clone"
