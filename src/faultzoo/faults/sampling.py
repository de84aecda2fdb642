"""Sampling designs: which faults to inject, and how many, for a stated error margin and confidence.

Every design returns a FaultList whose metadata records its parameters, the population size N,
the sample size n and, per stratum, N_h and n_h, so an analysis can weight the estimates.
Sample size (Leveugle et al., DATE 2009, "Statistical fault injection: quantified error and
confidence")::

    n = N / (1 + e^2 (N - 1) / (t^2 p (1 - p)))

with e the error margin, t the normal quantile of the confidence level and p the expected
failure rate (0.5 is the conservative choice).
"""

from __future__ import annotations

import inspect
import math
import numbers
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
from torch import nn

from faultzoo.exceptions import FaultError, found
from faultzoo.faults._args import integer, optional_real, optional_str, real
from faultzoo.faults.bits import parse_bits
from faultzoo.faults.model import Fault, FaultKind, FaultList, FaultListMeta, Stratum, _as_kind
from faultzoo.faults.targets import (
    Target, check_bits_fit, check_model, normalize_layers, normalize_targets, select_targets,
)

DEFAULT_ERROR = 0.01
DEFAULT_T = 2.58  # upstream's value, about 99 % confidence
DEFAULT_P = 0.5
DEFAULT_SEED = 42
UPSTREAM_POPULATION_FACTOR = 64  # 32 bits x 2 stuck-at values, as the upstream generator counts
UPSTREAM_MAX_TRIES = 1000


# --------------------------------------------------------------------------- sample size


def t_from_confidence(confidence: float) -> float:
    """Two-sided normal quantile: 0.95 -> 1.95996, 0.99 -> 2.57583."""
    confidence = real("confidence", confidence, expected="a number strictly between 0 and 1 (e.g. 0.99)")
    if not 0.0 < confidence < 1.0:
        raise FaultError(f"Confidence must lie strictly between 0 and 1, found {confidence!r} (e.g. 0.99).")
    try:
        return NormalDist().inv_cdf(0.5 + confidence / 2.0)
    except ValueError:  # a confidence so close to 1 that 0.5 + c/2 rounds to 1.0
        raise FaultError(f"Confidence {confidence!r} is too close to 1 for a normal quantile; use at most "
                         "0.9999999999999998, or give t instead.") from None


def confidence_from_t(t: float) -> float:
    """The two-sided confidence level of a normal quantile: 2.58 -> 0.99012."""
    return 2.0 * NormalDist().cdf(real("t", t, expected="a finite number such as 2.58")) - 1.0


def resolve_t(t: float | None = None, confidence: float | None = None) -> tuple[float, float]:
    """(t, confidence) from either one; neither gives upstream's t = 2.58."""
    expected_t = "a positive number such as 2.58 (about 99 % confidence), or None"
    t = optional_real("t", t, expected=expected_t)
    confidence = optional_real("confidence", confidence, expected="a number strictly between 0 and 1 (e.g. 0.99), "
                               "or None")
    if t is not None and confidence is not None:
        raise FaultError("Give either t or confidence, not both (CLI: --t or --confidence).")
    if confidence is not None:
        return t_from_confidence(confidence), float(confidence)
    t = DEFAULT_T if t is None else float(t)
    if t <= 0 or not math.isfinite(t * t):  # t**2 enters the sample size
        raise FaultError(f"t must be {expected_t.removesuffix(', or None')}; found {found(t)}.")
    return t, confidence_from_t(t)


def sample_size(
    population: int,
    error: float = DEFAULT_ERROR,
    *,
    t: float | None = None,
    confidence: float | None = None,
    p: float = DEFAULT_P,
) -> int:
    """Faults to draw from a population of N for error margin e at a confidence level.

    ``n = round(N / (1 + e^2 (N - 1) / (t^2 p (1 - p))))``; rounding is Python's round(), as
    upstream. Give ``t`` or ``confidence`` (default t = 2.58).

    Example:
        >>> sample_size(64 * 461_872)  # cifar10/resnet32, upstream parameters
        16632
    """
    population = integer("population", population, minimum=0, expected="an integer >= 0 (the faults a design "
                         "samples from)")
    error = _error_margin(error)
    p = _rate_p(p)
    if population == 0:
        return 0
    t_val, _ = resolve_t(t, confidence)
    spread = t_val**2 * p * (1 - p)
    if spread == 0:  # t and p so small that t^2 p (1 - p) underflows
        raise FaultError(f"t^2 p (1 - p) underflows to 0 for t={t_val!r}, p={p!r}: no sample size; use t >= 1e-100 "
                         "(or a confidence above 0) and p within [1e-100, 1 - 1e-16].")
    return round(population / (1 + error**2 * (population - 1) / spread))


def _error_margin(error: object) -> float:
    error = real("error", error, expected="an error margin strictly between 0 and 1 (e.g. 0.01)")
    if not 0.0 < error < 1.0:
        raise FaultError(f"Error margin must lie strictly between 0 and 1, found {error!r} (e.g. 0.01).")
    return error


def _rate_p(p: object) -> float:
    p = real("p", p, expected="an expected failure rate strictly between 0 and 1 (0.5 is the conservative choice)")
    if not 0.0 < p < 1.0:
        raise FaultError(f"p must lie strictly between 0 and 1, found {p!r} (0.5 is the conservative choice).")
    return p


def _seed(seed: object) -> int:
    # The metadata records the seed: it must stay printable, so at most 64 bits.
    return integer("seed", seed, minimum=-(2**63), maximum=2**64 - 1,
                   expected="an integer of at most 64 bits (the random seed, e.g. 42)")


def _check_common(model: object, model_id: object, weights_sha256: object) -> None:
    """Checks every design makes first: the model and the metadata strings."""
    check_model(model)
    optional_str("model_id", model_id, expected="a model id such as 'cifar10/resnet20', or None")
    optional_str("weights_sha256", weights_sha256, expected="a sha256 hex digest, or None")


def _n_option(n: object) -> int | None:
    if n is None:
        return None
    return integer("n", n, minimum=0, expected="a sample size: an integer >= 0, or None for the formula's")


def _check_n(n: int, population: int) -> int:
    if n > population:
        raise FaultError(f"Sample size n={n} must lie in 0..{population} (the population size).")
    return n


# --------------------------------------------------------------------------- helpers


def unravel(flat: int, shape: Sequence[int]) -> tuple[int, ...]:
    """Row-major (PyTorch) index of a flat element number."""
    out = []
    for size in reversed(shape):
        flat, rem = divmod(flat, size)
        out.append(rem)
    return tuple(reversed(out))


def allocate(total: int, weights: Sequence[float], caps: Sequence[int], minimum: int = 0) -> list[int]:
    """Split ``total`` into integers proportional to ``weights``, each in [min(minimum, cap), cap].

    Quotas above a cap (or below the minimum) are fixed there and the rest is shared again among
    the others; the integer parts then get the leftover units by largest remainder (Hamilton).
    The result sums to ``min(max(total, sum of minima), sum of caps)``.
    """
    k = len(weights)
    lows = [min(minimum, c) for c in caps]
    target = min(max(total, sum(lows)), sum(caps))
    fixed: dict[int, float] = {}
    while True:
        free = [i for i in range(k) if i not in fixed]
        rest = target - sum(fixed.values())
        wsum = sum(weights[i] for i in free)
        quota = {i: (rest * weights[i] / wsum if wsum > 0 else 0.0) for i in free}
        # Fix the quotas above their cap first; only then lift those below the minimum.
        clamp = [i for i in free if quota[i] > caps[i]] or [i for i in free if quota[i] < lows[i]]
        if not clamp:
            break
        for i in clamp:
            fixed[i] = caps[i] if quota[i] > caps[i] else lows[i]
    quota.update(fixed)
    counts = [min(caps[i], max(lows[i], int(math.floor(quota[i] + 1e-9)))) for i in range(k)]
    leftover = target - sum(counts)
    order = sorted(range(k), key=lambda i: (-(quota[i] - counts[i]), -weights[i], i))
    for i in order:
        if leftover <= 0:
            break
        if counts[i] < caps[i]:
            counts[i] += 1
            leftover -= 1
    # When all weights are zero, fill remaining units in stratum order (only reachable with n > 0).
    for i in range(k):
        while leftover > 0 and counts[i] < caps[i]:
            counts[i] += 1
            leftover -= 1
    return counts


def _base_meta(
    design: str,
    *,
    model: nn.Module,
    model_id: str | None,
    weights_sha256: str | None,
    **fields: Any,
) -> FaultListMeta:
    if model_id is None:
        provenance = getattr(model, "faultzoo", None)  # set by faultzoo.get_model
        model_id = getattr(provenance, "model_id", None)
    else:
        from faultzoo.zoo.recipes import model_label

        model_id = model_label(model_id)  # file.py:function, wherever the file lies
    return FaultListMeta(model_id=model_id, weights_sha256=weights_sha256, design=design, **fields)


def _selection(
    model: nn.Module,
    targets: str | Iterable[str] | None,
    layers: str | Iterable[str] | None,
    bits: str | Iterable[int] | None,
) -> tuple[list[Target], tuple[int, ...]]:
    chosen = select_targets(model, targets, layers)
    width = min(t.width for t in chosen)
    selected = parse_bits(bits) if bits is not None else tuple(range(width))
    assert selected is not None
    check_bits_fit(chosen, selected)
    return chosen, selected


def _draw(rng: random.Random, population: int, k: int) -> list[int]:
    # random.sample over a range never materialises the range: fine for N in the billions.
    return sorted(rng.sample(range(population), k))


# --------------------------------------------------------------------------- designs


def dnn_benchmarks_fault_list(
    model: nn.Module,
    *,
    error: float = DEFAULT_ERROR,
    t: float | None = None,
    confidence: float | None = None,
    p: float = DEFAULT_P,
    seed: int = DEFAULT_SEED,
    model_id: str | None = None,
    weights_sha256: str | None = None,
) -> FaultList:
    """The upstream dnn-benchmarks generator, reproduced row for row.

    N = 64 x (elements of all parameters with dim >= 2); n = sample_size(N, e, t, p); layers in
    ``named_parameters()`` order, each n_l = round(numel_l * n / total); ``random.seed(seed)``;
    per fault one ``randint(0, d - 1)`` per dimension, then ``randint(0, 31)`` for the bit; a
    repeated (layer, index, bit) is drawn again, up to 1000 tries. Faults are bit flips.

    Raises:
        FaultError: a layer where 1000 draws in a row all repeat earlier faults (upstream's
            behaviour there is unknown, so the list could not be guaranteed identical).
    """
    _check_common(model, model_id, weights_sha256)
    seed, error, p = _seed(seed), _error_margin(error), _rate_p(p)
    t_val, conf = resolve_t(t, confidence)
    layers = [(name, tuple(param.shape)) for name, param in model.named_parameters() if param.dim() >= 2]
    if not layers:
        raise FaultError("The model has no parameter with dim >= 2: the dnn-benchmarks design has nothing to sample.")
    total = sum(math.prod(shape) for _, shape in layers)
    population = UPSTREAM_POPULATION_FACTOR * total
    n = sample_size(population, error, t=t_val, p=p)
    rng = random.Random(seed)  # same Mersenne Twister stream as upstream's random.seed(seed)
    randint = rng.randint
    faults: list[Fault] = []
    strata: list[Stratum] = []
    seen: set[tuple[str, tuple[int, ...], int]] = set()
    for name, shape in layers:
        numel = math.prod(shape)
        n_layer = round(numel * n / total)
        strata.append(Stratum(name.removesuffix(".weight"), (name,), tuple(range(32)),
                              UPSTREAM_POPULATION_FACTOR * numel, n_layer))
        for _ in range(n_layer):
            for _try in range(UPSTREAM_MAX_TRIES):
                index = tuple([randint(0, d - 1) for d in shape])
                bit = randint(0, 31)
                key = (name, index, bit)
                if key not in seen:
                    break
            else:
                raise FaultError(f"Layer {name!r}: {UPSTREAM_MAX_TRIES} draws in a row repeated earlier faults; "
                                 f"the layer is too small for its {n_layer} faults.")
            seen.add(key)
            faults.append(Fault._trusted(name, index, (bit,), FaultKind.BITFLIP))
    meta = _base_meta(
        "dnn-benchmarks", model=model, model_id=model_id, weights_sha256=weights_sha256,
        design_params={"error": error, "t": t_val, "confidence": conf, "p": p,
                       "population_factor": UPSTREAM_POPULATION_FACTOR, "max_tries": UPSTREAM_MAX_TRIES,
                       "rng": "python-random", "allocation": "proportional-round"},
        population_size=population, sample_size=n, strata=tuple(strata), seed=seed, kind=FaultKind.BITFLIP,
        targets=("weights",), bits=tuple(range(32)),
    )
    return FaultList(tuple(faults), meta)


def _faults_from_positions(target: Target, bits: Sequence[int], positions: Iterable[int],
                           kind: FaultKind) -> list[Fault]:
    """Faults for population positions ``element * len(bits) + bit_slot`` of one tensor."""
    pos = np.fromiter(positions, dtype=np.int64)
    if pos.size == 0:
        return []
    elements, slots = np.divmod(pos, len(bits))
    coords = np.unravel_index(elements, target.shape) if target.shape else ()
    indices = zip(*(c.tolist() for c in coords)) if coords else ((),) * pos.size
    bit_values = np.asarray(bits, dtype=np.int64)[slots].tolist()
    param = target.param
    return [Fault._trusted(param, tuple(index), (bit,), kind) for index, bit in zip(indices, bit_values)]


def sample_network(
    model: nn.Module,
    *,
    error: float = DEFAULT_ERROR,
    t: float | None = None,
    confidence: float | None = None,
    p: float = DEFAULT_P,
    n: int | None = None,
    seed: int = DEFAULT_SEED,
    kind: FaultKind | str = FaultKind.BITFLIP,
    targets: str | Iterable[str] | None = None,
    layers: str | Iterable[str] | None = None,
    bits: str | Iterable[int] | None = None,
    model_id: str | None = None,
    weights_sha256: str | None = None,
) -> FaultList:
    """One population over all selected (tensor, element, bit) triples; a simple random sample.

    N = sum over targets of numel x len(bits); n = sample_size(N, e, t, p) unless given; drawn
    without replacement, sorted by tensor, element, bit.
    """
    _check_common(model, model_id, weights_sha256)
    seed, error, p, kind = _seed(seed), _error_margin(error), _rate_p(p), _as_kind(kind)
    n = _n_option(n)
    t_val, conf = resolve_t(t, confidence)
    chosen, sel_bits = _selection(model, targets, layers, bits)
    sizes = [t_.numel * len(sel_bits) for t_ in chosen]
    population = sum(sizes)
    n_total = sample_size(population, error, t=t_val, p=p) if n is None else _check_n(n, population)
    positions = _draw(random.Random(seed), population, n_total)
    faults: list[Fault] = []
    strata: list[Stratum] = []
    offset, cursor = 0, 0
    for target, size in zip(chosen, sizes):
        end = cursor
        while end < len(positions) and positions[end] < offset + size:
            end += 1
        faults += _faults_from_positions(target, sel_bits, (q - offset for q in positions[cursor:end]), kind)
        strata.append(Stratum(target.layer if target.group == "weights" else target.param, (target.param,),
                              sel_bits, size, end - cursor))
        offset, cursor = offset + size, end
    meta = _base_meta(
        "network", model=model, model_id=model_id, weights_sha256=weights_sha256,
        design_params={"error": error, "t": t_val, "confidence": conf, "p": p, "n": n, "rng": "python-random",
                       "allocation": "simple-random"},
        population_size=population, sample_size=n_total, strata=tuple(strata), seed=seed, kind=kind,
        targets=normalize_targets(targets), layers=normalize_layers(layers), bits=sel_bits,
    )
    return FaultList(tuple(faults), meta)


def sample_layers(
    model: nn.Module,
    *,
    error: float = DEFAULT_ERROR,
    t: float | None = None,
    confidence: float | None = None,
    p: float = DEFAULT_P,
    seed: int = DEFAULT_SEED,
    kind: FaultKind | str = FaultKind.BITFLIP,
    targets: str | Iterable[str] | None = None,
    layers: str | Iterable[str] | None = None,
    bits: str | Iterable[int] | None = None,
    model_id: str | None = None,
    weights_sha256: str | None = None,
) -> FaultList:
    """Each tensor its own population: N_l = numel_l x len(bits), n_l = sample_size(N_l, e, t, p).

    Gives every layer the same error margin, so per-layer rates are comparable.
    """
    _check_common(model, model_id, weights_sha256)
    seed, error, p, kind = _seed(seed), _error_margin(error), _rate_p(p), _as_kind(kind)
    t_val, conf = resolve_t(t, confidence)
    chosen, sel_bits = _selection(model, targets, layers, bits)
    rng = random.Random(seed)
    faults: list[Fault] = []
    strata: list[Stratum] = []
    for target in chosen:
        size = target.numel * len(sel_bits)
        n_layer = sample_size(size, error, t=t_val, p=p)
        faults += _faults_from_positions(target, sel_bits, _draw(rng, size, n_layer), kind)
        strata.append(Stratum(target.layer if target.group == "weights" else target.param, (target.param,),
                              sel_bits, size, n_layer))
    meta = _base_meta(
        "layer", model=model, model_id=model_id, weights_sha256=weights_sha256,
        design_params={"error": error, "t": t_val, "confidence": conf, "p": p, "rng": "python-random",
                       "allocation": "per-layer"},
        population_size=sum(s.population for s in strata), sample_size=sum(s.sample_size for s in strata),
        strata=tuple(strata), seed=seed, kind=kind, targets=normalize_targets(targets),
        layers=normalize_layers(layers), bits=sel_bits,
    )
    return FaultList(tuple(faults), meta)


Prior = float | Mapping[int, float] | Mapping[tuple[str, int], float] | Callable[[str, int], float]


def parse_prior(text: str | None) -> float | dict[int, float] | None:
    """Parse prior failure rates: ``"0.1"`` (every stratum) or ``"31=0.6,23-30=0.2"`` (per bit).

    Raises:
        FaultError: malformed text, a bad bit range, or a rate outside [0, 1].
    """
    if text is None:
        return None
    usage = "write one rate (0.1) or BITS=RATE pairs (31=0.6,23-30=0.2)"
    if not isinstance(text, str):
        raise FaultError(f"A prior to parse must be text; {usage}. Found {found(text)}.")

    def rate(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise FaultError(f"Prior {text!r}: {value.strip()!r} is not a number; {usage}.") from None
        if not 0.0 <= number <= 1.0:  # also refuses nan
            raise FaultError(f"Prior {text!r}: rate {value.strip()} is outside [0, 1].")
        return number

    if "=" not in text:
        return rate(text)
    prior: dict[int, float] = {}
    for part in text.split(","):
        if part.count("=") != 1:
            raise FaultError(f"Prior {text!r}: {part.strip()!r} is not BITS=RATE; {usage}.")
        bits, value = part.split("=")
        for bit in parse_bits(bits.strip(), 64) or ():
            prior[bit] = rate(value)
    return prior


def _prior_rate(prior: Prior | None, target: Target, bit: int, default: float) -> float:
    if prior is None:
        return default
    if callable(prior):
        try:
            rate = prior(target.param, bit)
        except Exception as exc:  # the caller's function: say which call failed
            raise FaultError(f"The prior function failed for {target.param!r} bit {bit}: {type(exc).__name__}: "
                             f"{str(exc)[:200]}; it must take (param, bit) and return a failure rate in [0, 1].") \
                from exc
        if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
            raise FaultError(f"The prior function returned {found(rate)} for {target.param!r} bit {bit}; "
                             "expected a failure rate in [0, 1].")
    elif isinstance(prior, (int, float)):
        rate = float(prior)
    else:
        rate = default
        for key in ((target.param, bit), (target.layer, bit), bit):
            if key in prior:
                rate = prior[key]  # type: ignore[index]
                break
    if not 0.0 <= rate <= 1.0:
        raise FaultError(f"Prior rate for {target.param!r} bit {bit} must lie in [0, 1], found {found(rate)}.")
    return float(rate)


_PRIOR_FORMS = ("one rate (0.1), a mapping {bit: rate} or {(layer or param, bit): rate}, a function "
                "(param, bit) -> rate, or None; parse text such as '31=0.6' with faultzoo.faults.sampling.parse_prior")


def _check_prior(prior: object) -> Prior | None:
    """A prior in one of its forms, with rates as floats in [0, 1] and keys checked; else FaultError."""
    if prior is None or callable(prior):
        return prior  # type: ignore[return-value]
    if isinstance(prior, numbers.Real) and not isinstance(prior, bool):
        return _prior_value(prior, "prior")
    if not isinstance(prior, Mapping):
        raise FaultError(f"prior must be {_PRIOR_FORMS}; found {found(prior)}.")
    checked: dict[Any, float] = {}
    for key, value in prior.items():
        if isinstance(key, numbers.Integral) and not isinstance(key, bool):
            norm: Any = int(key)
            ok = 0 <= norm < 64
        else:
            ok = (isinstance(key, tuple) and len(key) == 2 and isinstance(key[0], str)
                  and isinstance(key[1], numbers.Integral) and not isinstance(key[1], bool) and 0 <= key[1] < 64)
            norm = (key[0], int(key[1])) if ok else key
        if not ok:
            raise FaultError(f"prior key {found(key)} is neither a bit (0..63) nor a (layer or param, bit) pair; "
                             f"prior must be {_PRIOR_FORMS}.")
        checked[norm] = _prior_value(value, f"prior[{key!r}]")
    return checked


def _prior_value(value: object, name: str) -> float:
    rate = real(name, value, expected="a failure rate in [0, 1]")
    if not 0.0 <= rate <= 1.0:
        raise FaultError(f"{name} must be a failure rate in [0, 1]; found {found(value)}.")
    return rate


def sample_layer_bits(
    model: nn.Module,
    *,
    error: float = DEFAULT_ERROR,
    t: float | None = None,
    confidence: float | None = None,
    p: float = DEFAULT_P,
    n: int | None = None,
    allocation: str = "proportional",
    prior: Prior | None = None,
    min_per_stratum: int = 1,
    seed: int = DEFAULT_SEED,
    kind: FaultKind | str = FaultKind.BITFLIP,
    targets: str | Iterable[str] | None = None,
    layers: str | Iterable[str] | None = None,
    bits: str | Iterable[int] | None = None,
    model_id: str | None = None,
    weights_sha256: str | None = None,
) -> FaultList:
    """Stratified sample, strata = tensor x bit (N_h = numel of the tensor).

    The total n = sample_size(N, e, t, p) (or ``n``) is allocated

    * ``proportional``: n_h proportional to N_h;
    * ``neyman``: n_h proportional to N_h sqrt(p_h (1 - p_h)), p_h the prior failure rate of the
      stratum (``prior``: one rate, {bit: rate}, {(layer or param, bit): rate} or a function
      (param, bit) -> rate; strata without a prior use ``p``).

    Each stratum gets at least ``min_per_stratum`` faults (capped at N_h), so every stratum can be
    estimated; the total can then exceed n slightly (recorded in the strata).
    """
    _check_common(model, model_id, weights_sha256)
    seed, error, p, kind = _seed(seed), _error_margin(error), _rate_p(p), _as_kind(kind)
    n = _n_option(n)
    min_per_stratum = integer("min_per_stratum", min_per_stratum, minimum=0)
    prior = _check_prior(prior)
    t_val, conf = resolve_t(t, confidence)
    if not isinstance(allocation, str) or allocation not in ("proportional", "neyman"):
        raise FaultError(f"Unknown allocation {found(allocation)}; choose 'proportional' or 'neyman' (--allocation).")
    chosen, sel_bits = _selection(model, targets, layers, bits)
    cells = [(target, b) for target in chosen for b in sel_bits]
    sizes = [target.numel for target, _ in cells]
    population = sum(sizes)
    n_total = sample_size(population, error, t=t_val, p=p) if n is None else _check_n(n, population)
    if allocation == "proportional":
        weights = [float(s) for s in sizes]
    else:
        weights = [s * math.sqrt(_prior_rate(prior, tg, b, p) * (1 - _prior_rate(prior, tg, b, p)))
                   for s, (tg, b) in zip(sizes, cells)]
        if not any(weights) and n_total > 0:
            raise FaultError("Every stratum has a prior rate of 0 or 1: Neyman allocation is undefined; "
                             "use allocation='proportional' or priors strictly between 0 and 1.")
    counts = allocate(n_total, weights, sizes, min_per_stratum)
    rng = random.Random(seed)
    by_target: dict[str, list[Fault]] = {}
    strata: list[Stratum] = []
    for (target, b), size, count in zip(cells, sizes, counts):
        drawn = _draw(rng, size, count)
        by_target.setdefault(target.param, []).extend(_faults_from_positions(target, (b,), drawn, kind))
        name = target.layer if target.group == "weights" else target.param
        strata.append(Stratum(f"{name}:bit{b}", (target.param,), (b,), size, count))
    faults: list[Fault] = []
    for target in chosen:  # one order for every design: tensor, then element, then bit
        shape = target.shape
        faults += sorted(by_target.get(target.param, []),
                         key=lambda f: (_flat(f.index, shape), f.bits))
    meta = _base_meta(
        "layer-bit", model=model, model_id=model_id, weights_sha256=weights_sha256,
        design_params={"error": error, "t": t_val, "confidence": conf, "p": p, "n": n, "allocation": allocation,
                       "min_per_stratum": min_per_stratum, "prior": _prior_record(prior), "rng": "python-random"},
        population_size=population, sample_size=n_total, strata=tuple(strata), seed=seed, kind=kind,
        targets=normalize_targets(targets), layers=normalize_layers(layers), bits=sel_bits,
    )
    return FaultList(tuple(faults), meta)


def _flat(index: Sequence[int], shape: Sequence[int]) -> int:
    flat = 0
    for i, size in zip(index, shape):
        flat = flat * size + i
    return flat


def _prior_record(prior: Prior | None) -> Any:
    """JSON-friendly copy of the prior for the metadata."""
    if prior is None or isinstance(prior, (int, float)):
        return prior
    if callable(prior):
        return "callable"
    # String keys: the metadata goes through JSON, whose object keys are strings.
    return {(str(k) if isinstance(k, int) else f"{k[0]}:{k[1]}"): v for k, v in prior.items()}


def exhaustive(
    model: nn.Module,
    *,
    kind: FaultKind | str = FaultKind.BITFLIP,
    targets: str | Iterable[str] | None = None,
    layers: str | Iterable[str] | None = None,
    bits: str | Iterable[int] | None = None,
    max_faults: int = 1_000_000,
    model_id: str | None = None,
    weights_sha256: str | None = None,
) -> FaultList:
    """Every (tensor, element, bit) of a small selection: the whole population, no sampling error.

    Raises:
        FaultError: the selection holds more than ``max_faults`` faults (narrow ``layers`` or
            ``bits``, or raise ``max_faults``).
    """
    _check_common(model, model_id, weights_sha256)
    kind = _as_kind(kind)
    max_faults = integer("max_faults", max_faults, minimum=1)
    chosen, sel_bits = _selection(model, targets, layers, bits)
    population = sum(t.numel for t in chosen) * len(sel_bits)
    if population > max_faults:
        raise FaultError(f"An exhaustive list of this selection holds {population:,} faults, above max_faults="
                         f"{max_faults:,}. Narrow it with layers=/--layers or bits=/--bits, or raise max_faults.")
    faults: list[Fault] = []
    strata: list[Stratum] = []
    for target in chosen:
        size = target.numel * len(sel_bits)
        faults += _faults_from_positions(target, sel_bits, range(size), kind)
        strata.append(Stratum(target.layer if target.group == "weights" else target.param, (target.param,),
                              sel_bits, size, size))
    meta = _base_meta(
        "exhaustive", model=model, model_id=model_id, weights_sha256=weights_sha256,
        design_params={"max_faults": max_faults}, population_size=population, sample_size=population,
        strata=tuple(strata), seed=None, kind=kind, targets=normalize_targets(targets),
        layers=normalize_layers(layers), bits=sel_bits,
    )
    return FaultList(tuple(faults), meta)


@dataclass(frozen=True)
class FaultDesign:
    """A sampling design: its name (as the CLI and the list metadata spell it), builder and summary.

    The options a design accepts are the keyword parameters of its builder: the CLI and
    :func:`make_fault_list` read them from here, so they are stated once, in the function signature.
    """

    name: str
    build: Callable[..., FaultList]
    summary: str

    @property
    def options(self) -> tuple[str, ...]:
        params = inspect.signature(self.build).parameters.values()
        return tuple(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)

    def defaults(self) -> dict[str, Any]:
        params = inspect.signature(self.build).parameters.values()
        return {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


DESIGNS: dict[str, FaultDesign] = {d.name: d for d in (
    FaultDesign("dnn-benchmarks", dnn_benchmarks_fault_list,
                "upstream's generator: per-layer samples of bit flips in conv/linear weights, identical lists"),
    FaultDesign("network", sample_network, "one simple random sample over the whole selected population"),
    FaultDesign("layer", sample_layers, "one sample per tensor, each with the same error margin"),
    FaultDesign("layer-bit", sample_layer_bits, "stratified by tensor x bit, proportional or Neyman allocation"),
    FaultDesign("exhaustive", exhaustive, "every fault of a (small) selection: no sampling error"),
)}


def make_fault_list(model: nn.Module, design: str = "dnn-benchmarks", **options: Any) -> FaultList:
    """Build a fault list with the design named ``design`` (see :data:`DESIGNS`).

    Raises:
        FaultError: an unknown design, an option the design does not take, or a selection with no fault.
    """
    if not isinstance(design, str) or design not in DESIGNS:
        raise FaultError(f"Unknown design {found(design)}; choose one of {', '.join(DESIGNS)} (--design).")
    check_model(model)
    spec = DESIGNS[design]
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        raise FaultError(f"Design {design!r} does not take {', '.join(unknown)}; its options are "
                         f"{', '.join(spec.options)}.")
    fault_list = spec.build(model, **options)
    if len(fault_list) == 0:
        raise FaultError(f"Design {design!r} with these options yields no fault (sample size 0): widen the "
                         "selection (layers, bits, targets) or raise the sample size.")
    return fault_list


__all__ = [
    "DESIGNS", "FaultDesign", "allocate", "parse_prior", "confidence_from_t", "dnn_benchmarks_fault_list", "exhaustive",
    "make_fault_list",
    "resolve_t", "sample_layer_bits", "sample_layers", "sample_network", "sample_size", "t_from_confidence",
    "unravel",
]
