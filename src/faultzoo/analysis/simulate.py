"""Synthetic fault x image populations with known rates, for checking estimators and plans by simulation.

A population is a 0/1 table: fault i on image j is critical with probability
``p_ij = 1 - (1 - s_i) ** g_j``, fault severities ``s_i`` bimodal (most faults harmless, a few
critical on most images, some on a few fragile images) and image fragilities ``g_j`` log-normal
(some images fail under many faults), as in real campaigns. The table is drawn once and then
fixed: its mean is the truth that sampled campaigns estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CrossedPopulation", "crossed_population", "simulate_campaigns"]


@dataclass(frozen=True)
class CrossedPopulation:
    """A finite faults x images population of 0/1 outcomes and its truth."""

    table: np.ndarray  # bool, faults x images
    severity: np.ndarray  # s_i
    fragility: np.ndarray  # g_j
    truth: float  # the population rate: mean of the table

    @property
    def shape(self) -> tuple[int, int]:
        return self.table.shape  # type: ignore[return-value]


def crossed_population(faults: int, images: int, *, seed: int = 0, catastrophic: float = 0.03,
                       minor: float = 0.12, fragility_sigma: float = 1.0) -> CrossedPopulation:
    """Draw a population (see the module docstring).

    Args:
        faults, images: its size N x M.
        catastrophic: share of faults with severity ~ Beta(5, 1.5) (critical on most images).
        minor: share of faults with severity ~ Beta(1, 60) (critical on a few fragile images);
            the others have severity 0.
        fragility_sigma: spread of the log-normal image fragility (0: all images alike).
    """
    rng = np.random.default_rng(seed)
    kind = rng.random(faults)
    severity = np.zeros(faults)
    cat = kind < catastrophic
    small = (kind >= catastrophic) & (kind < catastrophic + minor)
    severity[cat] = rng.beta(5.0, 1.5, int(cat.sum()))
    severity[small] = rng.beta(1.0, 60.0, int(small.sum()))
    fragility = rng.lognormal(-fragility_sigma ** 2 / 2, fragility_sigma, images)  # mean 1
    p = 1.0 - np.power(1.0 - severity[:, None], fragility[None, :])
    table = rng.random((faults, images)) < p
    return CrossedPopulation(table, severity, fragility, float(table.mean()))


def simulate_campaigns(population: CrossedPopulation, faults: int, images: int, *, repetitions: int,
                       seed: int = 0):
    """Yield ``repetitions`` sampled campaigns: (fault rows, image columns, their 0/1 sub-table).

    Faults and images are drawn without replacement, independently for every repetition.
    """
    rng = np.random.default_rng(seed)
    n_all, m_all = population.shape
    for _ in range(repetitions):
        rows = rng.choice(n_all, faults, replace=False)
        cols = np.sort(rng.choice(m_all, images, replace=False)) if images < m_all else np.arange(m_all)
        yield rows, cols, population.table[np.ix_(rows, cols)]
