"""Which population the faults were drawn from, and how: strata, population sizes, domains.

The population of a weight-fault list is the grid of (tensor, bit) cells, each holding one fault
per element of the tensor: N = 32 x weights for single bit flips of float32 weights (upstream's
generator counts 64 per weight, both stuck-at values; this analysis uses the flips actually
injected). How the faults were drawn decides the estimator:

* ``dnn-benchmarks`` and ``network``: one sample of faults (a simple random sample; upstream's
  per-layer rounding is proportional, so the sample is self-weighting);
* ``layer``: one sample per tensor, strata = tensors, weights ``W_h = N_h / N``;
* ``layer-bit``: strata = tensor x bit;
* ``exhaustive``: every fault (a census: no sampling error over faults);
* unknown lists are analysed as a simple random sample.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

__all__ = ["AnalysisDesign", "bit_class", "design_of"]

SIGN, EXPONENT, MANTISSA, MULTI = "sign", "exponent", "mantissa", "multi-bit"
BIT_CLASSES = (SIGN, EXPONENT, MANTISSA, MULTI)
SRS_DESIGNS = ("dnn-benchmarks", "network", "unknown")
STRATIFIED = {"layer": "tensor", "layer-bit": "tensor x bit"}


def bit_class(bit: int) -> str:
    """IEEE-754 binary32 field of a bit: 31 sign, 23-30 exponent, 0-22 mantissa; -1 (several bits) multi-bit."""
    if bit < 0:
        return MULTI
    return SIGN if bit == 31 else EXPONENT if bit >= 23 else MANTISSA


Key = Callable[[str, int], object]
GROUPINGS: dict[str, Key] = {
    "all": lambda param, bit: "all",
    "layer": lambda param, bit: param,
    "bit": lambda param, bit: bit,
    "bit_class": lambda param, bit: bit_class(bit),
    "layer_bit": lambda param, bit: (param, bit),
}


@dataclass(frozen=True)
class AnalysisDesign:
    """How the faults of a result set were sampled, as the estimators need it (not the fault-list
    generators of :mod:`faultzoo.faults`, which draw the faults).

    Attributes:
        name: the fault list's design (``dnn-benchmarks``, ``network``, ``layer``, ``layer-bit``,
            ``exhaustive`` or ``unknown``).
        scheme: ``srs`` (one sample), ``stratified`` or ``census``.
        strata: what a stratum is (``tensor``, ``tensor x bit``; ``-`` for one sample).
        numel: elements of each tensor of the population (None: unknown population).
        bits: the bits of the population.
        population: N, the single-bit faults of the population (None: unknown).
        upstream_population: upstream's N (64 per weight) when the list is a dnn-benchmarks list.
        notes: how the population was established, and caveats.
    """

    name: str
    scheme: str
    strata: str
    numel: dict[str, int] | None
    bits: tuple[int, ...]
    population: int | None
    upstream_population: int | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def stratum(self, param: str, bit: int) -> object:
        if self.name == "layer":
            return param
        if self.name == "layer-bit":
            return (param, bit)
        return "all"

    def cell_sizes(self, grouping: str) -> dict[tuple[object, object], int] | None:
        """Population size of every (stratum, group) cell of a grouping (None: unknown population)."""
        if self.numel is None:
            return None
        key = GROUPINGS[grouping]
        sizes: dict[tuple[object, object], int] = {}
        for param, numel in self.numel.items():
            for bit in self.bits:
                cell = (self.stratum(param, bit), key(param, bit))
                sizes[cell] = sizes.get(cell, 0) + numel
        return sizes

    def describe(self) -> dict:
        return {"name": self.name, "scheme": self.scheme, "strata": self.strata, "population": self.population,
                "upstream_population": self.upstream_population, "tensors": len(self.numel or {}),
                "bits": list(self.bits), "notes": list(self.notes)}


def _numel_from_meta(meta) -> dict[str, int]:
    """Elements per tensor from the strata of a fault list's metadata."""
    factor = float((meta.design_params or {}).get("population_factor") or 32) / 32.0  # 2 for upstream's 64
    numel: dict[str, int] = {}
    for s in meta.strata:
        per_bit = s.population / (len(s.bits) * factor) if s.bits else 0
        for param in s.params:
            numel[param] = int(round(per_bit / len(s.params)))
    return numel


def design_of(results) -> AnalysisDesign:
    """The sampling design of a loaded result set (see the module docstring)."""
    meta = results.fault_meta
    name = getattr(meta, "design", None) or "unknown"
    notes: list[str] = []
    table = results.table
    params = sorted(set(table.param))
    multi = bool((table.bit < 0).any())
    bits = tuple(getattr(meta, "bits", ()) or range(32))
    numel: dict[str, int] | None = None
    if meta is not None and meta.strata:
        numel = _numel_from_meta(meta)
        if results.shapes:  # the model is authoritative where it is known
            numel = {p: int(np.prod(results.shapes[p])) if p in results.shapes else v for p, v in numel.items()}
        notes.append(f"population from the fault list's {name} metadata")
    elif results.shapes:
        weights = {p: int(np.prod(s)) for p, s in results.shapes.items() if len(s) >= 2}
        if set(params) <= set(weights):
            numel = weights
            notes.append(f"population: every conv/linear weight of {results.model_id} (upstream's targets)")
        elif set(params) <= set(results.shapes):
            numel = {p: int(np.prod(results.shapes[p])) for p in params}
            notes.append("population: the tensors that hold faults")
    if numel is not None and not set(params) <= set(numel):
        notes.append("some faults lie outside the design's tensors: population unknown, no finite-population "
                     "correction")
        numel = None
    if multi:
        notes.append("multi-bit faults: population unknown, analysed as one sample without correction")
        numel, name = None, "unknown" if name in STRATIFIED else name
    if results.fault_selection.get("fault_limit"):
        notes.append(f"the faults are the first {results.fault_selection['fault_limit']} of their list, not a "
                     "random sample: the intervals assume one")
    population = sum(numel.values()) * len(bits) if numel else None
    upstream = None
    if name == "dnn-benchmarks" and numel:
        upstream = 64 * sum(numel.values())
        notes.append(f"N = 32 x {sum(numel.values()):,} weights = {population:,} single bit flips (upstream's N = "
                     f"64 x weights = {upstream:,} counts both stuck-at values)")
    if name == "exhaustive":
        scheme = "census" if population and len(table) >= population else "srs"
    elif name in STRATIFIED and numel is not None:
        scheme = "stratified"
    else:
        if name in STRATIFIED:
            notes.append(f"{name} design without population sizes: analysed as one sample")
        scheme = "srs"
    return AnalysisDesign(name, scheme, STRATIFIED.get(name, "-") if scheme == "stratified" else "-", numel, bits,
                  population, upstream, tuple(notes))
