"""Outcome classes of one inference under a fault, and their names: declared once, for every layer.

The rule that decides them, bit for bit against the golden run, is :func:`faultzoo.backends.classify.classify`.
This module imports nothing but the standard library, so that anything may name the outcomes.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["NONFINITE", "OUTCOME_KEYS", "RATE_KEYS", "RATE_LABELS", "Outcome"]


class Outcome(IntEnum):
    """masked: every logit bit-identical to the fault-free run; non-critical: not masked, same top-1;
    critical (SDC-1): the top-1 class differs from the fault-free top-1 (not from the label)."""

    MASKED = 0
    NON_CRITICAL = 1
    CRITICAL = 2

    @property
    def key(self) -> str:
        """The name of the outcome's column and rate everywhere: ``masked``, ``non_critical``, ``critical``."""
        return self.name.lower()

    @property
    def label(self) -> str:
        """How reports and plots name the outcome."""
        return _LABELS[self]


_LABELS = {Outcome.MASKED: "masked", Outcome.NON_CRITICAL: "non-critical", Outcome.CRITICAL: "critical (SDC-1)"}

# Column and rate names, in code order: the outcome classes, and the NaN/Inf flag counted beside them.
OUTCOME_KEYS: tuple[str, ...] = tuple(o.key for o in Outcome)
NONFINITE = "nonfinite"
RATE_KEYS: tuple[str, ...] = (*OUTCOME_KEYS, NONFINITE)
RATE_LABELS: dict[str, str] = {**{o.key: o.label for o in Outcome}, NONFINITE: "NaN/Inf"}
