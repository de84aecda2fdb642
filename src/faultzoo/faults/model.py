"""The fault model as data: fault kinds, one fault, a fault list and the metadata of its design."""

from __future__ import annotations

import hashlib
import json
import operator
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from typing import Any, overload

from faultzoo.exceptions import FaultError, FaultListFormatError, found
from faultzoo.faults._args import as_list

# Widest word we support (float64); a bit outside [0, MAX_BITS) can never be valid.
MAX_BITS = 64


class FaultKind(str, Enum):
    """What a fault does to the selected bits of a stored word."""

    BITFLIP = "bitflip"  # XOR: what the upstream campaigns injected
    STUCK_AT_0 = "stuck-at-0"  # AND NOT mask
    STUCK_AT_1 = "stuck-at-1"  # OR mask

    def __str__(self) -> str:
        return self.value


def _as_kind(kind: FaultKind | str) -> FaultKind:
    try:
        return FaultKind(kind)
    except (ValueError, TypeError):
        choices = ", ".join(k.value for k in FaultKind)
        raise FaultError(f"Unknown fault kind {found(kind)}; expected one of: {choices}.") from None


def _int_tuple(name: str, value: object, param: object) -> tuple[int, ...]:
    """A fault's index or bits as a tuple of ints (an int alone is one entry); else FaultError."""
    if type(value) is tuple and all(type(item) is int for item in value):  # the common case, fast
        return value
    items = (value,) if isinstance(value, int) and not isinstance(value, bool) else value
    items = as_list(items)
    if items is None:  # not a collection (a 0-d array or tensor too)
        raise FaultError(f"Fault {name} of {param!r} must be a sequence of integers such as (3, 0, 2, 1); "
                         f"found {found(value)}.")
    out = []
    for item in items:
        try:
            number = operator.index(item)
        except TypeError:
            number = None
        if number is None or isinstance(item, bool):
            raise FaultError(f"Fault {name} of {param!r} must hold integers; found {found(item)} in {found(value)}.")
        out.append(number)
    return tuple(out)


@dataclass(frozen=True)
class Fault:
    """One fault on one stored word of a model tensor.

    Attributes:
        param: full tensor name as in ``model.state_dict()``, e.g. ``"layer1.0.conv1.weight"``.
        index: element index in PyTorch order (for a conv weight: out, in, h, w).
        bits: affected bits of the word read as an unsigned integer (0 = mantissa LSB), sorted and unique.
        kind: bitflip, stuck-at-0 or stuck-at-1.
    """

    param: str
    index: tuple[int, ...]
    bits: tuple[int, ...]
    kind: FaultKind = FaultKind.BITFLIP

    def __post_init__(self) -> None:
        if not isinstance(self.param, str) or not self.param:
            raise FaultError(f"Fault param must be a non-empty tensor name, found {found(self.param)}.")
        if isinstance(self.index, int) and not isinstance(self.index, bool):  # (5,) for a 1-D tensor, not 5
            raise FaultError(f"Fault index of {self.param!r} must be a tuple with one entry per dimension, such "
                             f"as (5,) for a 1-D tensor; found {found(self.index)}.")
        index = _int_tuple("index", self.index, self.param)
        if any(not 0 <= i < 2**63 for i in index):  # torch indexes with int64
            raise FaultError(f"Fault index of {self.param!r} must be non-negative (and below 2**63), found "
                             f"{found(index)}.")
        bits = tuple(sorted(set(_int_tuple("bits", self.bits, self.param))))
        if not bits:
            raise FaultError(f"Fault on {self.param!r} {found(index)} names no bit; give at least one.")
        if bits[0] < 0 or bits[-1] >= MAX_BITS:
            raise FaultError(f"Fault bits of {self.param!r} must lie in [0, {MAX_BITS}), found {found(bits)}.")
        # Normalise in place: the dataclass is frozen, so go through object.__setattr__.
        object.__setattr__(self, "index", index)
        object.__setattr__(self, "bits", bits)
        object.__setattr__(self, "kind", _as_kind(self.kind))

    @classmethod
    def _trusted(cls, param: str, index: tuple[int, ...], bits: tuple[int, ...], kind: FaultKind) -> Fault:
        """Build without checks, for generators whose values are valid by construction (10x faster)."""
        fault = object.__new__(cls)
        object.__setattr__(fault, "param", param)
        object.__setattr__(fault, "index", index)
        object.__setattr__(fault, "bits", bits)
        object.__setattr__(fault, "kind", kind)
        return fault

    @property
    def layer(self) -> str:
        """The upstream ``Layer`` column: the tensor name without a trailing ``.weight``."""
        return self.param.removesuffix(".weight")

    @property
    def bit(self) -> int:
        """The single affected bit; a multi-bit fault raises FaultError."""
        if len(self.bits) != 1:
            raise FaultError(f"Fault on {self.param!r} {self.index} affects bits {self.bits}, not a single bit.")
        return self.bits[0]

    def __str__(self) -> str:
        bits = ",".join(map(str, self.bits))
        return f"{self.kind.value} {self.param}{list(self.index)} bit {bits}"


@dataclass(frozen=True)
class Stratum:
    """One population of a sampling design and the number of faults drawn from it.

    For single-population designs there is one stratum per layer (its share of the network
    sample) or one for the whole network.
    """

    name: str
    params: tuple[str, ...]
    bits: tuple[int, ...]
    population: int
    sample_size: int

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Stratum:
        return cls(str(data["name"]), tuple(data["params"]), tuple(int(b) for b in data["bits"]),
                   int(data["population"]), int(data["sample_size"]))


def tool_version() -> str:
    """Version of faultzoo that wrote a list (recorded in the metadata)."""
    try:
        from faultzoo import __version__

        return str(__version__)
    except ImportError:  # package __init__ unavailable (partial install): fall back to the distribution
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("faultzoo")
        except PackageNotFoundError:
            return "0+unknown"


@dataclass(frozen=True)
class FaultListMeta:
    """How a fault list was made: enough for a later analysis to choose the right estimators.

    Attributes:
        model_id: zoo id, e.g. ``"cifar10/resnet32"`` (None when unknown).
        weights_sha256: hash of the checkpoint the list is meant for (None when unknown).
        design: ``"dnn-benchmarks"``, ``"network"``, ``"layer"``, ``"layer-bit"``, ``"exhaustive"``,
            or ``"unknown"`` for a list read from a file without metadata.
        design_params: the design's parameters (error margin, t, confidence, p, allocation, ...).
        population_size: N, the number of possible faults the design samples from.
        sample_size: n, the design's sample size before per-stratum rounding.
        strata: per stratum (layer, layer x bit, ...) its population and allocated sample size.
        seed: the random seed (None for exhaustive lists and unknown origin).
        kind: the fault kind of every fault (None when a list mixes kinds).
        targets: which tensors were eligible (``"weights"``, ``"bias"``, ``"bn"``, ``"bn-stats"``).
        layers: layer name patterns that restricted the targets (empty: all).
        bits: the bits that were eligible.
        tool_version: faultzoo version that made the list.
        source_file: file the list was read from (None for generated lists).
        source_format: format of that file (``"faultzoo"``, ``"torch"``, ``"keras"``).
    """

    model_id: str | None = None
    weights_sha256: str | None = None
    design: str = "unknown"
    design_params: Mapping[str, Any] = field(default_factory=dict)
    population_size: int | None = None
    sample_size: int | None = None
    strata: tuple[Stratum, ...] = ()
    seed: int | None = None
    kind: FaultKind | None = FaultKind.BITFLIP
    targets: tuple[str, ...] = ("weights",)
    layers: tuple[str, ...] = ()
    bits: tuple[int, ...] = ()
    tool_version: str = field(default_factory=tool_version)
    source_file: str | None = None
    source_format: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (the source fields are left out: they describe a file, not the list)."""
        data = asdict(self)
        data["kind"] = self.kind.value if self.kind is not None else None
        data["design_params"] = dict(self.design_params)
        for key in ("source_file", "source_format"):
            data.pop(key)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], **overrides: Any) -> FaultListMeta:
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        if values.get("kind") is not None:
            values["kind"] = _as_kind(values["kind"])
        values["strata"] = tuple(Stratum.from_dict(s) for s in values.get("strata", ()))
        for key in ("targets", "layers"):
            if key in values:
                values[key] = tuple(values[key])
        if "bits" in values:
            values["bits"] = tuple(int(b) for b in values["bits"])
        values.update(overrides)
        return cls(**values)


def fingerprint_rows(faults: Sequence[Fault]) -> str:
    """sha256 of the canonical text of the faults, in order.

    One line per fault: ``param TAB index (comma-joined) TAB bits (comma-joined) TAB kind LF``,
    UTF-8. Injection ids and metadata are not part of it: two lists with the same faults in the
    same order have the same fingerprint whatever their format.
    """
    digest = hashlib.sha256()
    for f in faults:
        line = f"{f.param}\t{','.join(map(str, f.index))}\t{','.join(map(str, f.bits))}\t{f.kind.value}\n"
        digest.update(line.encode())
    return digest.hexdigest()


@dataclass(frozen=True, eq=False)
class FaultList:
    """An ordered, immutable list of faults with injection ids and design metadata.

    Attributes:
        faults: the faults, in injection order.
        meta: how the list was made.
        ids: the ``Injection`` number of each fault (default 0..n-1); kept from upstream files so
            results can be written back under the same numbers.
        extra: columns carried along from a file, e.g. the upstream results columns
            ``n_injections, masked, non_critical, critical``: name -> one value per fault.
        lines: file line of each fault when read from a file (for error messages), else None.
    """

    faults: tuple[Fault, ...]
    meta: FaultListMeta = field(default_factory=FaultListMeta)
    ids: tuple[int, ...] | None = None
    extra: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    lines: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.faults, (str, bytes, Mapping)) or not isinstance(self.faults, Iterable):
            raise FaultError(f"FaultList faults must be a sequence of Fault objects; found {found(self.faults)}.")
        faults = tuple(self.faults)
        bad = next((f for f in faults if not isinstance(f, Fault)), None)
        if bad is not None:
            raise FaultError(f"FaultList faults must all be Fault objects; found {found(bad)}.")
        if not isinstance(self.meta, FaultListMeta):
            raise FaultError(f"FaultList meta must be a FaultListMeta; found {found(self.meta)}.")
        object.__setattr__(self, "faults", faults)
        ids = tuple(range(len(faults))) if self.ids is None else _int_tuple("ids", self.ids, "the fault list")
        if len(ids) != len(faults):
            raise FaultError(f"FaultList has {len(faults)} faults but {len(ids)} ids; give one id per fault.")
        object.__setattr__(self, "ids", ids)
        if not isinstance(self.extra, Mapping) or not all(
                isinstance(v, Iterable) and not isinstance(v, (str, bytes)) for v in self.extra.values()):
            raise FaultError(f"FaultList extra must map column names to one value per fault; found "
                             f"{found(self.extra)}.")
        extra = {str(k): tuple(v) for k, v in self.extra.items()}
        for name, column in extra.items():
            if len(column) != len(faults):
                raise FaultError(f"FaultList extra column {name!r} has {len(column)} values for {len(faults)} faults.")
        object.__setattr__(self, "extra", extra)
        if self.lines is not None:
            object.__setattr__(self, "lines", tuple(self.lines))

    def __len__(self) -> int:
        return len(self.faults)

    def __iter__(self) -> Iterator[Fault]:
        return iter(self.faults)

    @overload
    def __getitem__(self, item: int) -> Fault: ...

    @overload
    def __getitem__(self, item: slice) -> FaultList: ...

    def __getitem__(self, item: int | slice) -> Fault | FaultList:
        if isinstance(item, slice):
            return FaultList(
                self.faults[item], self.meta, self.ids[item],  # type: ignore[index]
                {k: v[item] for k, v in self.extra.items()},
                self.lines[item] if self.lines is not None else None,
            )
        return self.faults[item]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FaultList):
            return NotImplemented
        return (self.faults, self.ids, self.meta, dict(self.extra)) == (other.faults, other.ids, other.meta,
                                                                          dict(other.extra))

    def __repr__(self) -> str:
        return (f"FaultList({len(self)} faults, design={self.meta.design!r}, model_id={self.meta.model_id!r}, "
                f"fingerprint={self.fingerprint()[:12]})")

    def fingerprint(self) -> str:
        """sha256 of the canonical fault rows (param, index, bits, kind), in order; see fingerprint_rows."""
        return fingerprint_rows(self.faults)

    def params(self) -> list[str]:
        """Tensor names that the faults touch, in order of first appearance."""
        return list(dict.fromkeys(f.param for f in self.faults))

    def id_of(self, position: int) -> int:
        """Injection id of the fault at a position."""
        return self.ids[position]  # type: ignore[index]

    def take(self, positions: Sequence[int]) -> FaultList:
        """The faults at ``positions`` (in that order), keeping their Injection ids, extra columns and lines."""
        pick = tuple(positions)
        return FaultList(tuple(self.faults[i] for i in pick), self.meta,
                         tuple(self.id_of(i) for i in pick),
                         {k: tuple(v[i] for i in pick) for k, v in self.extra.items()},
                         tuple(self.lines[i] for i in pick) if self.lines is not None else None)

    def without_repeats(self) -> FaultList:
        """The list without rows whose fault (tensor, index, bits, kind) repeats an earlier row's."""
        first: dict[tuple, int] = {}
        for pos, f in enumerate(self.faults):
            first.setdefault((f.param, f.index, f.bits, f.kind), pos)
        return self.take(sorted(first.values()))

    def with_meta(self, **changes: Any) -> FaultList:
        """A copy whose metadata has some fields replaced."""
        return FaultList(self.faults, replace(self.meta, **changes), self.ids, self.extra, self.lines)


def meta_json(meta: FaultListMeta, fingerprint: str) -> str:
    """Canonical one-line JSON of the metadata plus the fingerprint (sorted keys: reproducible bytes)."""
    data = meta.to_dict()
    data["fingerprint"] = fingerprint
    try:
        return json.dumps(data, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as exc:  # a value of the caller's that JSON cannot hold (an object, a huge int)
        raise FaultListFormatError(f"The fault list's metadata cannot be written as JSON: {str(exc)[:200]}. Keep "
                                   "its fields (design_params above all) to str, numbers, lists and dicts.") from None
