"""Fault-injection campaigns: the framework-neutral core.

Options (:mod:`.options`) -> spec and identity (:mod:`.spec`) -> loaded inputs (:mod:`.loading`) -> tasks
(:mod:`.tasks`) -> executors (:mod:`.executors`) running workers (:mod:`.worker`) on a framework backend's
engines (:mod:`faultzoo.backends`) -> the resumable store (:mod:`.store`) -> summary and exports.
:func:`run_campaign` (:mod:`.runner`) drives it all.

Names resolve lazily, so that reading the option table (the command line's help) imports no framework.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "run_campaign": "faultzoo.campaign.runner", "CampaignResult": "faultzoo.campaign.runner",
    "Progress": "faultzoo.campaign.runner", "FaultResult": "faultzoo.campaign.store",
    "ResultStore": "faultzoo.campaign.store", "CampaignSummary": "faultzoo.campaign.summary",
    "Outcome": "faultzoo.outcome", "classify": "faultzoo.outcome",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'faultzoo.campaign' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
