"""Fault lists: the fault model, bit operations, injection, sampling designs, formats, Keras mapping.

Typical use::

    from faultzoo.faults import dnn_benchmarks_fault_list, injected, write_fault_list
    faults = dnn_benchmarks_fault_list(model, model_id="cifar10/resnet32")
    write_fault_list(faults, "resnet32_FL.csv", format="torch")
    with injected(model, faults[0]):
        logits = model(images)
"""

from __future__ import annotations

from faultzoo.exceptions import FaultError, FaultListFormatError
from faultzoo.faults.bits import LAYOUTS, BitLayout, bit_field, bit_mask, corrupt, parse_bits, same_bits, same_bits_rows, word_bits, word_width
from faultzoo.faults.inject import check_fault, faulty_value, injected, is_noop, target_tensor
from faultzoo.faults.io import FORMATS, format_fault_list, read_fault_list, write_fault_list
from faultzoo.faults.keras import (
    KerasFault,
    from_keras,
    keras_layer_names,
    keras_name_to_param,
    keras_to_torch_index,
    to_keras,
    torch_to_keras_index,
)
from faultzoo.faults.model import Fault, FaultKind, FaultList, FaultListMeta, Stratum, fingerprint_rows
from faultzoo.faults.sampling import (
    DEFAULT_ERROR,
    DEFAULT_P,
    DEFAULT_SEED,
    DEFAULT_T,
    DESIGNS,
    allocate,
    confidence_from_t,
    dnn_benchmarks_fault_list,
    exhaustive,
    make_fault_list,
    resolve_t,
    sample_layer_bits,
    sample_layers,
    sample_network,
    sample_size,
    t_from_confidence,
)
from faultzoo.faults.targets import TARGET_GROUPS, Target, model_targets, select_targets
from faultzoo.faults.validate import validate

__all__ = [
    "DEFAULT_ERROR", "DEFAULT_P", "DEFAULT_SEED", "DEFAULT_T", "DESIGNS", "FORMATS", "LAYOUTS", "TARGET_GROUPS",
    "BitLayout", "Fault", "FaultError", "FaultKind", "FaultList", "FaultListFormatError", "FaultListMeta",
    "KerasFault", "Stratum", "Target", "allocate", "bit_field", "bit_mask", "check_fault", "confidence_from_t",
    "corrupt", "dnn_benchmarks_fault_list", "exhaustive", "faulty_value", "fingerprint_rows", "format_fault_list",
    "from_keras", "injected", "is_noop", "keras_layer_names", "keras_name_to_param", "keras_to_torch_index",
    "make_fault_list", "model_targets", "parse_bits", "read_fault_list", "resolve_t", "same_bits", "sample_layer_bits",
    "sample_layers", "sample_network", "sample_size", "select_targets", "t_from_confidence", "to_keras",
    "torch_to_keras_index", "validate", "word_bits", "word_width", "write_fault_list",
]
