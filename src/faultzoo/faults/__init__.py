"""Fault lists: the fault model, sampling designs, file formats, validation, injection, Keras mapping.

Typical use::

    from faultzoo.faults import dnn_benchmarks_fault_list, injected, write_fault_list
    faults = dnn_benchmarks_fault_list(model, model_id="cifar10/resnet32")
    write_fault_list(faults, "resnet32_FL.csv", format="torch")
    with injected(model, faults[0]):
        logits = model(images)

Lower-level pieces (bit layouts, sample-size helpers, target selection, index permutations) live in
the submodules ``bits``, ``sampling``, ``targets``, ``keras`` and ``inject``.
"""

from __future__ import annotations

from faultzoo.faults.bits import corrupt, parse_bits, same_bits, word_bits
from faultzoo.faults.inject import injected, is_noop
from faultzoo.faults.io import FORMATS, format_fault_list, read_fault_list, write_fault_list
from faultzoo.faults.keras import KerasFault, from_keras, keras_layer_names, to_keras
from faultzoo.faults.model import Fault, FaultKind, FaultList, FaultListMeta, Stratum
from faultzoo.faults.sampling import (
    DESIGNS,
    FaultDesign,
    dnn_benchmarks_fault_list,
    exhaustive,
    make_fault_list,
    sample_layer_bits,
    sample_layers,
    sample_network,
    sample_size,
)
from faultzoo.faults.targets import TARGET_GROUPS, Target, model_targets
from faultzoo.faults.validate import validate

__all__ = [
    "DESIGNS", "FORMATS", "TARGET_GROUPS", "Fault", "FaultDesign", "FaultKind", "FaultList", "FaultListMeta",
    "KerasFault",
    "Stratum", "Target", "corrupt", "dnn_benchmarks_fault_list", "exhaustive", "format_fault_list", "from_keras",
    "injected", "is_noop", "keras_layer_names", "make_fault_list", "model_targets", "parse_bits", "read_fault_list",
    "same_bits", "sample_layer_bits", "sample_layers", "sample_network", "sample_size", "to_keras", "validate",
    "word_bits", "write_fault_list",
]
