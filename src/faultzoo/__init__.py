"""faultzoo: fault-injection reliability studies of DNNs.

The main job in one import::

    import faultzoo

    model = faultzoo.get_model("cifar10/resnet20")                    # upstream weights
    faults = faultzoo.dnn_benchmarks_fault_list(model, model_id="cifar10/resnet20")
    faultzoo.write_fault_list(faults, "rn20_FL.csv", format="torch")
    result = faultzoo.run_campaign("cifar10/resnet20", "rn20_FL.csv", output="rn20-run",
                                   data="test.npz", fault_sample=300)
    print(result.summary.total.rate("critical"))

Names resolve lazily, so ``import faultzoo`` stays light (no campaign machinery, no TensorFlow)
until a name is used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Public name -> module that defines it.
_EXPORTS = {
    # model zoo
    "list_models": "faultzoo.zoo", "get_model": "faultzoo.zoo", "model_info": "faultzoo.zoo",
    "Weights": "faultzoo.zoo",
    # data
    "load_selection": "faultzoo.data", "list_datasets": "faultzoo.data", "DataSelection": "faultzoo.data",
    # fault lists
    "read_fault_list": "faultzoo.faults", "write_fault_list": "faultzoo.faults", "make_fault_list": "faultzoo.faults",
    "dnn_benchmarks_fault_list": "faultzoo.faults", "sample_network": "faultzoo.faults",
    "sample_layers": "faultzoo.faults", "sample_layer_bits": "faultzoo.faults", "exhaustive": "faultzoo.faults",
    "DESIGNS": "faultzoo.faults", "Fault": "faultzoo.faults", "FaultList": "faultzoo.faults",
    "injected": "faultzoo.faults",
    # campaigns
    "run_campaign": "faultzoo.campaign", "CampaignResult": "faultzoo.campaign", "Outcome": "faultzoo.campaign",
    # analysis
    "load_results": "faultzoo.analysis", "estimate": "faultzoo.analysis", "check_quality": "faultzoo.analysis",
    "write_report": "faultzoo.analysis", "plan_campaign": "faultzoo.analysis",
    # errors
    "FaultzooError": "faultzoo.exceptions",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'faultzoo' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
