"""Bit-level operations on IEEE-754 words through integer views (float32, float16, bfloat16, float64).

Bits are numbered on the word read as an unsigned integer: bit 0 is the mantissa LSB and the
highest bit is the sign. binary32: 0-22 mantissa, 23-30 exponent, 31 sign; binary16: 0-9, 10-14,
15; bfloat16: 0-6, 7-14, 15.
"""

from __future__ import annotations

import numbers
import operator
import re
from collections.abc import Iterable, Mapping
from typing import NamedTuple

import torch

from faultzoo.exceptions import FaultError, found
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
    _check_tensor("values", values)
    fmt = format_of(values.dtype)
    try:
        numbers_ = [operator.index(b) for b in ((bits,) if isinstance(bits, int) else bits)]  # type: ignore[union-attr]
    except TypeError:  # not iterable, or not integers
        raise FaultError(f"bits must be a bit number or an iterable of bit numbers 0..{fmt.width - 1}; "
                         f"found {found(bits)}.") from None
    mask_value = fmt.signed(fmt.mask(numbers_))
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


def _check_tensor(name: str, value: object) -> None:
    if not isinstance(value, torch.Tensor):
        raise FaultError(f"{name} must be a torch.Tensor; found {found(value)}.")


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether two tensors hold bit-identical words (NaN payloads and -0.0 included)."""
    _check_tensor("a", a)
    _check_tensor("b", b)
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
    _check_tensor("value", value)
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
        width: if given, every bit must be below it (default 64, the widest word).

    Returns:
        Sorted unique bits, or None when ``spec`` is None.

    Raises:
        FaultError: malformed text, a value of another type, no bit, or a bit outside the word.
    """
    if width is not None and (isinstance(width, bool) or not isinstance(width, numbers.Integral)
                              or not 1 <= width <= 64):
        raise FaultError(f"width must be the bits of a word (1..64, e.g. 32) or None; found {found(width)}.")
    limit = int(width) if width is not None else 64
    if spec is None:
        return None
    bits: set[int] = set()
    outside: list[str] = []
    if isinstance(spec, str):
        for part in spec.split(","):
            match = _RANGE_PART.match(part)
            if not match:
                raise FaultError(f"Bad bit range {part.strip()[:40]!r} in {spec[:80]!r}; write e.g. '31', '23-30' or "
                                 "'0-7,31'.")
            try:
                lo = int(match.group(1))
                hi = int(match.group(2)) if match.group(2) is not None else lo
            except ValueError:  # more digits than int() converts
                raise FaultError(f"Bad bit range {part.strip()[:40]!r} in {spec[:80]!r}: a number with thousands of "
                                 f"digits; valid bits are 0..{limit - 1}.") from None
            if hi < lo:
                raise FaultError(f"Bad bit range {part.strip()[:40]!r} in {spec[:80]!r}: the end is below the start.")
            if hi >= limit:  # never expand a range beyond the word: '0-99999999999' must not fill memory
                first = max(lo, limit)
                outside.append(_number(first) if hi == first else f"{_number(first)}-{_number(hi)}")
            bits.update(range(lo, min(hi, limit - 1) + 1))
    elif isinstance(spec, (bytes, bytearray, Mapping)) or not isinstance(spec, Iterable):
        raise FaultError(f"The bit selection must be text such as '31', '23-30' or '0-7,31', or an iterable of "
                         f"integers such as [23, 31]; found {found(spec)}.")
    else:
        try:
            items = list(spec)
        except TypeError:  # a 0-d array or tensor
            raise FaultError(f"The bit selection must be text such as '31', '23-30' or '0-7,31', or an iterable of "
                             f"integers such as [23, 31]; found {found(spec)}.") from None
        for b in items:
            try:
                bit = operator.index(b)  # ints, numpy and 0-d torch integers; never a float or a string
            except TypeError:
                bit = None
            if bit is None or isinstance(b, bool):
                raise FaultError(f"The bit selection {found(spec)} holds {found(b)}; expected integer bit numbers "
                                 f"0..{limit - 1}.")
            if 0 <= bit < limit:
                bits.add(bit)
            else:
                outside.append(_number(bit))
    if outside:
        shown = ", ".join(sorted(set(outside), key=_range_start))
        raise FaultError(f"Bits [{shown}] are outside the {limit}-bit word; "
                         f"valid bits are 0..{limit - 1}.")
    if not bits:
        raise FaultError(f"The bit selection {found(spec)} selects no bit.")
    return tuple(sorted(bits))


def _number(n: int) -> str:
    """An integer for a message: huge ones shortened (str() refuses ints of over 4,300 digits)."""
    return str(n) if -10**18 < n < 10**18 else f"<{'-' if n < 0 else ''}{n.bit_length()}-bit integer>"


def _range_start(text: str) -> tuple[int, str]:
    head = text.lstrip("-").split("-")[0]
    return (int(head), text) if head.isdigit() and len(head) < 19 else (1 << 64, text)
