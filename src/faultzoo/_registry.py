"""Named registries of pluggable kinds, resolved on first use: framework backends (``torch``, ``keras``).

A registry maps a name to an import string (``"package.module:attribute"``) and imports it only when
the name is first asked for. Whoever needs a kind (the campaign core, the zoo, the CLI) asks here by
name, so no layer imports a backend module at load time and a lower layer never imports a higher
one; this module itself imports nothing of faultzoo but its exceptions. A new backend is one module
plus one :meth:`Registry.add` line (or a call from a plug-in package).
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

from faultzoo.exceptions import OptionError

__all__ = ["BACKENDS", "Registry"]


class Registry:
    """Names -> import strings of one kind of plug-in, objects imported once on first use.

    ``kind`` names the plug-in in messages (``"framework"``); ``parameter`` is the option a user sets
    to choose one (errors name it, and the CLI translates it to its flag).
    """

    def __init__(self, kind: str, parameter: str):
        self.kind, self.parameter = kind, parameter
        self._targets: dict[str, str] = {}
        self._summaries: dict[str, str] = {}
        self._loaded: dict[str, Any] = {}

    def add(self, name: str, target: str, summary: str) -> None:
        """Register ``name`` as the object at ``target`` (``"package.module:attribute"``); ``summary`` says in
        a few words what it is (help texts list it without importing the object)."""
        if name in self._targets and self._targets[name] != target:
            raise ValueError(f"{self.kind} {name!r} is already registered as {self._targets[name]}")
        self._targets[name] = target
        self._summaries[name] = summary

    def describe(self) -> str:
        """``name (summary)`` of every registered name, for help texts."""
        return ", ".join(f"{name} ({summary})" for name, summary in self._summaries.items())

    def names(self) -> tuple[str, ...]:
        """Registered names, in registration order."""
        return tuple(self._targets)

    def __contains__(self, name: object) -> bool:
        return name in self._targets

    def get(self, name: object) -> Any:
        """The object registered as ``name``, imported now if it was not yet.

        Raises:
            OptionError: no such name (the message lists the registered ones).
        """
        if not isinstance(name, str) or name not in self._targets:
            close = difflib.get_close_matches(name, self._targets, n=1) if isinstance(name, str) else []
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise OptionError(self.parameter, name, f"unknown {self.kind}; choose one of {', '.join(self._targets)}."
                              f"{hint}", usage=True)
        if name not in self._loaded:
            module, _, attribute = self._targets[name].partition(":")
            self._loaded[name] = getattr(importlib.import_module(module), attribute)
        return self._loaded[name]


# Framework backends: what a campaign's model runs in (see faultzoo.backends).
BACKENDS = Registry("framework", "framework")
BACKENDS.add("torch", "faultzoo.backends.torch:BACKEND", "the PyTorch model")
BACKENDS.add("keras", "faultzoo.backends.keras:BACKEND", "its Keras 3 twin, same weights and faults; needs faultzoo[tf]")
