"""Word formats: how a stored word's bits are laid out, and the one arithmetic that applies a fault to a word.

Bits are numbered on the word read as an unsigned integer: bit 0 is the mantissa LSB and the highest
bit is the sign (docs/faults.md). Each format is registered once (:func:`register_format`) with its
torch dtype, its width and where its fields sit; everything that reads or corrupts words (the
PyTorch injection, the Keras twin's word writer, validation, designs) looks the format up here.
A new number format (an integer word with a scale, say) is one more registration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import torch

from faultzoo.exceptions import FaultError
from faultzoo.faults.model import FaultKind

__all__ = ["FORMATS", "WordFormat", "apply_fault", "format_of", "register_format"]


@dataclass(frozen=True)
class WordFormat:
    """One stored-word format: its name, torch dtype, width and the bits of each field."""

    name: str
    dtype: torch.dtype
    width: int
    mantissa: range
    exponent: range
    sign: int
    int_view: torch.dtype  # the signed integer dtype of the same width (torch reads the word through it)

    def field_of(self, bit: int) -> str:
        """``"sign"``, ``"exponent"`` or ``"mantissa"``."""
        if not 0 <= bit < self.width:
            raise FaultError(f"Bit {bit} is outside the {self.width}-bit {self.name} word; valid bits are "
                             f"0..{self.width - 1}.")
        if bit == self.sign:
            return "sign"
        return "exponent" if bit in self.exponent else "mantissa"

    def mask(self, bits) -> int:
        """The unsigned mask of some bits of this word."""
        mask = 0
        for bit in bits:
            if not 0 <= bit < self.width:
                shown = bit if -10**18 < bit < 10**18 else f"<{bit.bit_length()}-bit integer>"
                raise FaultError(f"Bit {shown} is outside the {self.width}-bit {self.name} word; valid bits are "
                                 f"0..{self.width - 1}.")
            mask |= 1 << bit
        return mask

    def signed(self, unsigned: int) -> int:
        """An unsigned word as the value of the signed integer view (two's complement)."""
        return unsigned - (1 << self.width) if unsigned >= 1 << (self.width - 1) else unsigned


FORMATS: dict[torch.dtype, WordFormat] = {}
_BY_NAME: dict[str, WordFormat] = {}


def register_format(fmt: WordFormat) -> WordFormat:
    """Make a word format known (by its dtype and its name)."""
    if fmt.dtype in FORMATS or fmt.name in _BY_NAME:
        raise ValueError(f"word format {fmt.name} ({fmt.dtype}) is already registered")
    FORMATS[fmt.dtype] = _BY_NAME[fmt.name] = fmt
    return fmt


def format_of(dtype_or_name: torch.dtype | str) -> WordFormat:
    """The registered format of a dtype (``torch.float32``) or name (``"float32"``).

    Raises:
        FaultError: no word format is registered for it.
    """
    fmt = _BY_NAME.get(dtype_or_name) if isinstance(dtype_or_name, str) else FORMATS.get(dtype_or_name)
    if fmt is None:
        known = ", ".join(_BY_NAME)
        raise FaultError(f"Cannot inject into {dtype_or_name} words: bit faults are defined for {known}.")
    return fmt


Words = TypeVar("Words")  # a Python int or an integer tensor


def apply_fault(words: Words, mask: Words, kind: FaultKind) -> Words:
    """The fault's arithmetic, on Python integers or integer tensors alike: XOR for a bit flip, clear the
    bits for stuck-at-0, set them for stuck-at-1. (The only place that says what a fault kind does.)"""
    if kind is FaultKind.BITFLIP:
        return words ^ mask
    if kind is FaultKind.STUCK_AT_0:
        return words & ~mask
    return words | mask


register_format(WordFormat("float32", torch.float32, 32, range(0, 23), range(23, 31), 31, torch.int32))
register_format(WordFormat("float16", torch.float16, 16, range(0, 10), range(10, 15), 15, torch.int16))
register_format(WordFormat("bfloat16", torch.bfloat16, 16, range(0, 7), range(7, 15), 15, torch.int16))
register_format(WordFormat("float64", torch.float64, 64, range(0, 52), range(52, 63), 63, torch.int64))
