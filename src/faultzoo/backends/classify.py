"""Classifying faulty inferences against the golden run, bit for bit: the rule every engine applies."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from faultzoo.exceptions import ExactnessError
from faultzoo.faults.bits import same_bits_rows
from faultzoo.outcome import Outcome

__all__ = ["UNSET", "Classified", "OutcomeSink", "classify", "top1"]


@dataclass(frozen=True)
class Classified:
    """Per-image outcome of one fault: codes (Outcome values), NaN/Inf flags, faulty top-1."""

    codes: np.ndarray  # uint8, one per image
    nonfinite: np.ndarray  # bool: some faulty logit is NaN or Inf
    top1: np.ndarray  # int64: faulty top-1 class

    @staticmethod
    def all_masked(golden_top1: np.ndarray) -> Classified:
        n = len(golden_top1)
        return Classified(np.zeros(n, np.uint8), np.zeros(n, bool), golden_top1.copy())


UNSET = 255  # outcome code of an image not classified yet


@dataclass
class OutcomeSink:
    """Outcomes of one fault on every image, filled in as an engine decides rows (in any order)."""

    codes: np.ndarray
    nonfinite: np.ndarray
    top1: np.ndarray

    @classmethod
    def empty(cls, n: int) -> OutcomeSink:
        return cls(np.full(n, UNSET, np.uint8), np.zeros(n, bool), np.zeros(n, np.int64))

    def put(self, images: np.ndarray, classified: Classified) -> None:
        self.codes[images] = classified.codes
        self.nonfinite[images] = classified.nonfinite
        self.top1[images] = classified.top1

    def masked(self, images: np.ndarray, golden_nonfinite: np.ndarray, golden_top1: np.ndarray) -> None:
        """Rows whose faulty values equal the golden ones: the golden logits, bit for bit."""
        self.codes[images] = Outcome.MASKED
        self.nonfinite[images] = golden_nonfinite[images]
        self.top1[images] = golden_top1[images]

    def result(self, what: str) -> Classified:
        """The filled-in outcomes (raising ExactnessError if an image was left undecided)."""
        left = int((self.codes == UNSET).sum())
        if left:
            raise ExactnessError(f"The fast engine left {left} images of {what} unclassified.")
        return Classified(self.codes, self.nonfinite, self.top1)


def top1(logits: torch.Tensor) -> torch.Tensor:
    """Index of the largest logit; first index on ties; a NaN counts as largest (torch.argmax semantics)."""
    return logits.argmax(dim=1)


def classify(golden_logits: torch.Tensor, faulty_logits: torch.Tensor) -> Classified:
    """Outcome per row of ``faulty_logits`` against the matching rows of ``golden_logits``."""
    masked = same_bits_rows(faulty_logits, golden_logits)
    faulty_top1 = top1(faulty_logits)
    same_top1 = faulty_top1 == top1(golden_logits)
    codes = torch.full((len(faulty_logits),), Outcome.CRITICAL, dtype=torch.uint8, device=faulty_logits.device)
    codes[same_top1] = Outcome.NON_CRITICAL
    codes[masked] = Outcome.MASKED
    nonfinite = ~torch.isfinite(faulty_logits).all(dim=1)
    return Classified(codes.cpu().numpy(), nonfinite.cpu().numpy(), faulty_top1.cpu().numpy().astype(np.int64))
