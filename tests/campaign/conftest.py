"""Fixtures shared by the campaign tests."""

from __future__ import annotations

import pytest

from faultzoo.backends.base import Backend
from faultzoo.campaign import runner as runner_module


@pytest.fixture
def no_compute(monkeypatch):
    """Make any golden run (of any framework backend) or engine start fail the test: proves an error came
    before compute."""
    def forbidden(*args, **kwargs):
        raise AssertionError("compute started although the campaign should have been refused or had nothing to do")

    for backend in (cls for cls in _subclasses(Backend) if "golden_run" in vars(cls)):
        monkeypatch.setattr(backend, "golden_run", forbidden)
    monkeypatch.setattr(runner_module, "make_engine", forbidden)


def _subclasses(cls: type) -> list[type]:
    from faultzoo.backends import get_backend

    for name in ("torch", "keras"):  # imported, so that their classes exist
        get_backend(name)
    found, todo = [], [cls]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.append(sub)
            todo.append(sub)
    return found
