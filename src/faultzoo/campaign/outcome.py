"""Outcome classes of one inference under a fault, decided bit for bit against the golden run."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import torch


class Outcome(IntEnum):
    """masked: every logit bit-identical to the fault-free run; non-critical: not masked, same top-1;
    critical (SDC-1): the top-1 class differs from the fault-free top-1 (not from the label)."""

    MASKED = 0
    NON_CRITICAL = 1
    CRITICAL = 2


def same_bits(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-row bitwise equality. Integer views, because NaN != NaN and -0.0 == 0.0 as floats."""
    if a.dtype != b.dtype or a.shape != b.shape:
        raise ValueError(f"cannot compare {a.dtype}{tuple(a.shape)} with {b.dtype}{tuple(b.shape)}")
    n = len(a)
    ia, ib = _int_view(a.contiguous().view(n, -1)), _int_view(b.contiguous().view(n, -1))
    return torch.eq(ia, ib).all(dim=1)


def _int_view(rows: torch.Tensor) -> torch.Tensor:
    # Widest integer view that tiles a row exactly: fewer, wider comparisons, same answer.
    width = rows.shape[1] * rows.element_size()
    for itype, size in ((torch.int64, 8), (torch.int32, 4), (torch.int16, 2)):
        if width % size == 0 and rows.element_size() <= size:
            return rows.view(itype)
    return rows.view(torch.uint8)


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


def top1(logits: torch.Tensor) -> torch.Tensor:
    """Index of the largest logit; first index on ties; a NaN counts as largest (torch.argmax semantics)."""
    return logits.argmax(dim=1)


def classify(golden_logits: torch.Tensor, faulty_logits: torch.Tensor) -> Classified:
    """Outcome per row of ``faulty_logits`` against the matching rows of ``golden_logits``."""
    masked = same_bits(faulty_logits, golden_logits)
    faulty_top1 = top1(faulty_logits)
    same_top1 = faulty_top1 == top1(golden_logits)
    codes = torch.full((len(faulty_logits),), Outcome.CRITICAL, dtype=torch.uint8, device=faulty_logits.device)
    codes[same_top1] = Outcome.NON_CRITICAL
    codes[masked] = Outcome.MASKED
    nonfinite = ~torch.isfinite(faulty_logits).all(dim=1)
    return Classified(codes.cpu().numpy(), nonfinite.cpu().numpy(), faulty_top1.cpu().numpy().astype(np.int64))
