"""The development environment that `make` builds: each clone runs its own code.

scripts/ensure-venv.sh keeps the heavy dependencies in a shared base environment and gives each clone
a small environment of its own (``.venv/``) that holds this clone's editable install. These checks
run when the tests run from such an environment, and skip elsewhere (a plain ``pip install``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

CLONE_VENV = REPO / ".venv"


def _from_make() -> Path:
    marker = CLONE_VENV / ".base"
    if Path(sys.prefix).resolve() != CLONE_VENV.resolve() or not marker.is_file():
        pytest.skip("not running from the per-clone environment that scripts/ensure-venv.sh builds")
    return Path(marker.read_text().strip())


def test_this_clone_runs_its_own_code():
    _from_make()
    import faultzoo

    assert Path(faultzoo.__file__).resolve().is_relative_to(REPO / "src")


def test_the_shared_base_holds_no_faultzoo():
    base = _from_make()
    done = subprocess.run([str(base / "bin" / "python"), "-c", "import faultzoo"], capture_output=True, text=True,
                          cwd="/", timeout=120)
    assert done.returncode != 0 and "No module named 'faultzoo'" in done.stderr


def test_the_base_is_keyed_by_the_pinned_requirements():
    import hashlib

    base = _from_make()
    key = hashlib.sha256((REPO / "requirements" / "ci.txt").read_bytes()).hexdigest()[:16]
    assert base.name == key
