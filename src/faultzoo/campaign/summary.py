"""Campaign totals: outcome rates overall, by bit field (sign / exponent / mantissa) and by layer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from faultzoo.backends.golden import GoldenRun
from faultzoo.campaign.store import FaultResult
from faultzoo.exceptions import OptionError
from faultzoo.faults import Fault, FaultList
from faultzoo.faults.formats import WordFormat
from faultzoo.outcome import OUTCOME_KEYS, RATE_KEYS

_COUNTS = ("faults", "n", *RATE_KEYS)  # a tally's fields


@dataclass
class Tally:
    faults: int = 0
    n: int = 0
    masked: int = 0
    non_critical: int = 0
    critical: int = 0
    nonfinite: int = 0

    def add(self, r: FaultResult) -> None:
        self.faults += 1
        self.n += r.n
        self.masked += r.masked
        self.non_critical += r.non_critical
        self.critical += r.critical
        self.nonfinite += r.nonfinite

    def rate(self, what: str) -> float:
        """Share of the inferences in class ``what`` (masked, non_critical, critical, nonfinite), as a
        fraction in [0, 1] (the API's convention; multiply by 100 for a percentage)."""
        if what not in RATE_KEYS:
            raise OptionError("what", what, f"expected one of {', '.join(RATE_KEYS)}.")
        return getattr(self, what) / self.n if self.n else float("nan")

    def to_dict(self) -> dict:
        return {**self.__dict__, **{f"{k}_pct": 100 * self.rate(k) for k in OUTCOME_KEYS}}


@dataclass
class CampaignSummary:
    faults_total: int
    faults_done: int
    golden_top1: float
    images: int
    total: Tally = field(default_factory=Tally)
    by_bit_class: dict[str, Tally] = field(default_factory=dict)
    by_layer: dict[str, Tally] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict) -> CampaignSummary:
        """The summary that :meth:`to_dict` wrote (as in provenance.json)."""
        def tally(d: dict) -> Tally:
            return Tally(**{k: d[k] for k in _COUNTS})

        return cls(data["faults_total"], data["faults_done"], data["golden_top1"], data["images"], tally(data["total"]),
                   {k: tally(v) for k, v in data["by_bit_class"].items()},
                   {k: tally(v) for k, v in data["by_layer"].items()})

    def to_dict(self) -> dict:
        return {"faults_total": self.faults_total, "faults_done": self.faults_done, "golden_top1": self.golden_top1,
                "images": self.images, "total": self.total.to_dict(),
                "by_bit_class": {k: v.to_dict() for k, v in self.by_bit_class.items()},
                "by_layer": {k: v.to_dict() for k, v in self.by_layer.items()}}


def summarize(fault_list: FaultList, results: Sequence[FaultResult], golden: GoldenRun,
              word_format: Callable[[Fault], WordFormat]) -> CampaignSummary:
    """Tallies overall, by bit field of the faulty word (``word_format``: the format of a fault's word) and
    by layer."""
    summary = CampaignSummary(len(fault_list), len(results), golden.accuracy, len(golden.labels))
    order = ("sign", "exponent", "mantissa", "multi-bit")
    summary.by_bit_class = {k: Tally() for k in order}
    for r in results:
        fault = fault_list[r.fault_id]
        summary.total.add(r)
        cls = word_format(fault).field_of(fault.bits[0]) if len(fault.bits) == 1 else "multi-bit"
        summary.by_bit_class[cls].add(r)
        summary.by_layer.setdefault(fault.layer, Tally()).add(r)
    summary.by_bit_class = {k: v for k, v in summary.by_bit_class.items() if v.faults}
    return summary
