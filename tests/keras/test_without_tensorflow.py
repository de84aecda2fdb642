"""Without TensorFlow: faultzoo imports and works, and asking for a twin names the `tf` extra.

One fresh interpreter checks, in order: importing faultzoo (its keras package and CLI included)
loads neither TensorFlow nor Keras; then, with ``import tensorflow`` / ``import keras`` made to
fail (``sys.modules[name] = None``), the PyTorch side still works and every twin request stops
with an error naming ``pip install "faultzoo[tf]"``, in the library and in the CLI.
"""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

SCRIPT = """
import sys
import faultzoo, faultzoo.keras, faultzoo.cli, faultzoo.zoo
assert faultzoo.model_info("cifar10/resnet20").frameworks == ("torch", "keras")
print("loaded:", sorted(m for m in ("tensorflow", "keras") if m in sys.modules))
sys.modules["tensorflow"] = None
sys.modules["keras"] = None
from faultzoo.exceptions import FaultzooError, FrameworkUnavailableError
faultzoo.get_model("cifar10/resnet20", weights=None)  # PyTorch unaffected
try:
    faultzoo.get_model("cifar10/resnet20", weights=None, framework="keras")
except FrameworkUnavailableError as exc:
    assert isinstance(exc, FaultzooError) and isinstance(exc, ImportError)
    print("library:", exc)
else:
    raise SystemExit("no error")
from faultzoo.cli import main
try:
    main(["eval", "cifar10/resnet20", "--framework", "keras", "--weights", "none"])
except SystemExit as exit:
    print("cli exit:", exit.code)
"""


def test_without_tensorflow_faultzoo_works_and_twins_name_the_extra():
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "loaded: []" in lines  # TensorFlow may be installed here, but nothing imported it
    library = next(line for line in lines if line.startswith("library:"))
    assert 'pip install "faultzoo[tf]"' in library
    assert "cli exit: 1" in lines
    # The CLI: one plain error line, before any data is loaded, no traceback.
    first = done.stderr.strip().splitlines()[0]
    assert first.startswith("error: Keras twins need TensorFlow and Keras 3") and "faultzoo[tf]" in first
    assert "Traceback" not in done.stderr
