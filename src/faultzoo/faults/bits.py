"""Bit-level operations on IEEE-754 words through integer views (float32, float16, bfloat16, float64).

Bits are numbered on the word read as an unsigned integer: bit 0 is the mantissa LSB and the
highest bit is the sign. binary32: 0-22 mantissa, 23-30 exponent, 31 sign; binary16: 0-9, 10-14,
15; bfloat16: 0-6, 7-14, 15.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

import torch

from faultzoo.exceptions import FaultError
from faultzoo.faults.formats import FORMATS, apply_fault, format_of
from faultzoo.faults.model import FaultKind, _as_kind


class BitLayout(NamedTuple):
    """Where the fields of one floating-point format sit in its word (a view of its WordFormat)."""

    width: int
    mantissa: range
    exponent: range
    sign: int


LAYOUTS: dict[torch.dtype, BitLayout] = {
    dtype: BitLayout(f.width, f.mantissa, f.exponent, f.sign) for dtype, f in FORMATS.items()
}


def _check_dtype(dtype: torch.dtype) -> None:
    format_of(dtype)


def word_width(dtype: torch.dtype) -> int:
    """Bits per stored word of a floating-point dtype (32 for float32)."""
    return format_of(dtype).width


def int_view_dtype(dtype: torch.dtype) -> torch.dtype:
    """The signed integer dtype of the same width, used to read a float's bits."""
    return format_of(dtype).int_view


def bit_field(dtype: torch.dtype, bit: int) -> str:
    """``"sign"``, ``"exponent"`` or ``"mantissa"`` for a bit of a dtype's word."""
    layout = LAYOUTS[dtype] if dtype in LAYOUTS else None
    if layout is None or not 0 <= bit < layout.width:
        raise FaultError(f"Bit {bit} is outside the {word_width(dtype)}-bit word of {dtype}.")
    if bit == layout.sign:
        return "sign"
    return "exponent" if bit in layout.exponent else "mantissa"


def bit_mask(bits: Iterable[int], width: int) -> int:
    """The mask of some bits as a *signed* integer of the given width (torch has no uint32)."""
    mask = 0
    for bit in bits:
        if not 0 <= bit < width:
            raise FaultError(f"Bit {bit} is outside a {width}-bit word; valid bits are 0..{width - 1}.")
        mask |= 1 << bit
    # Two's complement: a mask with the sign bit set is negative in the signed view.
    return mask - (1 << width) if mask >= 1 << (width - 1) else mask


def corrupt(values: torch.Tensor, bits: Iterable[int] | int, kind: FaultKind | str = FaultKind.BITFLIP) -> torch.Tensor:
    """A new tensor with the fault applied to every element, through an integer view.

    Args:
        values: float32, float16, bfloat16 or float64 tensor (any shape, 0-d included).
        bits: bit numbers of the word (0 = mantissa LSB).
        kind: bitflip (XOR), stuck-at-0 (clear) or stuck-at-1 (set).

    Returns:
        A tensor of the same dtype, shape and device; ``values`` is left untouched.
    """
    fmt = format_of(values.dtype)
    mask_value = fmt.signed(fmt.mask((bits,) if isinstance(bits, int) else bits))
    words = values.detach().contiguous().view(fmt.int_view)
    mask = torch.tensor(mask_value, dtype=fmt.int_view, device=values.device)
    return apply_fault(words, mask, _as_kind(kind)).view(values.dtype)


def bit_view(values: torch.Tensor) -> torch.Tensor:
    """The stored words of a float tensor as integers of the same width (other dtypes unchanged).

    Compare words through this view: as floats, NaN != NaN and -0.0 == 0.0.
    """
    if not values.dtype.is_floating_point:
        return values
    return values.detach().contiguous().view(int_view_dtype(values.dtype))


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether two tensors hold bit-identical words (NaN payloads and -0.0 included)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return bool(torch.equal(bit_view(a), bit_view(b)))


def same_bits_rows(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-row (first axis) bit identity of two tensors of one dtype and shape, as a bool tensor."""
    if a.dtype != b.dtype or a.shape != b.shape:
        raise FaultError(f"Cannot compare {a.dtype}{tuple(a.shape)} with {b.dtype}{tuple(b.shape)} row by row.")
    n = len(a)
    return torch.eq(_row_words(a.contiguous().view(n, -1)), _row_words(b.contiguous().view(n, -1))).all(dim=1)


def _row_words(rows: torch.Tensor) -> torch.Tensor:
    # Widest integer view that tiles a row exactly: fewer, wider comparisons, same answer.
    width = rows.shape[1] * rows.element_size()
    for itype, size in ((torch.int64, 8), (torch.int32, 4), (torch.int16, 2)):
        if width % size == 0 and rows.element_size() <= size:
            return rows.view(itype)
    return rows.view(torch.uint8)


def word_bits(value: torch.Tensor) -> int:
    """The stored word of a one-element tensor as an unsigned integer (for display and tests)."""
    if value.numel() != 1:
        raise FaultError(f"word_bits needs a one-element tensor, found shape {tuple(value.shape)}.")
    width = word_width(value.dtype)
    raw = int(value.detach().reshape(()).contiguous().view(int_view_dtype(value.dtype)).item())
    return raw % (1 << width)


_RANGE_PART = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


def parse_bits(spec: str | Iterable[int] | None, width: int | None = None) -> tuple[int, ...] | None:
    """Parse a bit selection such as ``"31"``, ``"23-30"`` or ``"0-7,23-31"`` into sorted unique bits.

    Args:
        spec: the text (ranges are inclusive), an iterable of ints, or None (no restriction).
        width: if given, every bit must be below it.

    Returns:
        Sorted unique bits, or None when ``spec`` is None.
    """
    if spec is None:
        return None
    bits: set[int] = set()
    if isinstance(spec, str):
        for part in spec.split(","):
            match = _RANGE_PART.match(part)
            if not match:
                raise FaultError(f"Bad bit range {part.strip()!r} in {spec!r}; write e.g. '31', '23-30' or '0-7,31'.")
            lo = int(match.group(1))
            hi = int(match.group(2)) if match.group(2) is not None else lo
            if hi < lo:
                raise FaultError(f"Bad bit range {part.strip()!r} in {spec!r}: the end is below the start.")
            bits.update(range(lo, hi + 1))
    else:
        bits.update(int(b) for b in spec)
    if not bits:
        raise FaultError(f"The bit selection {spec!r} selects no bit.")
    limit = width if width is not None else 64
    bad = sorted(b for b in bits if not 0 <= b < limit)
    if bad:
        raise FaultError(f"Bits {bad} are outside the {limit}-bit word; valid bits are 0..{limit - 1}.")
    return tuple(sorted(bits))
