"""Checks of the arguments of the public fault-list functions: a wrong type or value raises faultzoo's own
error naming the parameter, the value found and what is expected (never a TypeError from deep inside)."""

from __future__ import annotations

import math
import numbers
import operator
import os
from collections.abc import Mapping
from pathlib import Path

from torch import nn

from faultzoo.exceptions import FaultError, FaultzooError, found

ErrorType = type[FaultzooError]


def as_list(value: object) -> list | None:
    """The items of a collection (never the characters of a string or the keys of a mapping); None for
    anything that is not one (a number, a 0-d array or tensor)."""
    if isinstance(value, (str, bytes, bytearray, Mapping)):
        return None
    try:
        return list(value)  # type: ignore[call-overload]
    except TypeError:
        return None


def real(name: str, value: object, *, expected: str, error: ErrorType = FaultError) -> float:
    """A finite real number (ints and numpy scalars too, never a bool or a string) as a float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise error(f"{name} must be {expected}; found {found(value)}.")
    try:
        number = float(value)
    except (OverflowError, ValueError, TypeError):  # an int beyond the float range
        raise error(f"{name} must be {expected}; found {found(value)}.") from None
    if not math.isfinite(number):
        raise error(f"{name} must be {expected}; found {found(value)}.")
    return number


def optional_real(name: str, value: object, *, expected: str, error: ErrorType = FaultError) -> float | None:
    return None if value is None else real(name, value, expected=expected, error=error)


INT64_MAX = 2**63 - 1  # counts recorded in a list's metadata stay within int64 (JSON, numpy, torch)


def integer(name: str, value: object, *, minimum: int | None = None, maximum: int = INT64_MAX,
            expected: str | None = None, error: ErrorType = FaultError) -> int:
    """An integer (numpy integers too, never a bool, a float or a string) in ``minimum..maximum``."""
    what = expected or ("an integer" if minimum is None else f"an integer >= {minimum}")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise error(f"{name} must be {what}; found {found(value)}.")
    number = operator.index(value)
    if (minimum is not None and number < minimum) or number > maximum:
        bound = f" (at most {maximum:,})" if number > maximum and expected is None else ""
        raise error(f"{name} must be {what}{bound}; found {found(value)}.")
    return number


def optional_str(name: str, value: object, *, expected: str = "a string or None",
                 error: ErrorType = FaultError) -> str | None:
    if value is not None and not isinstance(value, str):
        raise error(f"{name} must be {expected}; found {found(value)}.")
    return value


def module(value: object, *, name: str = "model", error: ErrorType = FaultError) -> nn.Module:
    """The model argument: a torch.nn.Module (a zoo model from faultzoo.get_model, or one of yours)."""
    if not isinstance(value, nn.Module):
        hint = (f" (a zoo id? build the model first: faultzoo.get_model({value[:60]!r}, weights=None))"
                if isinstance(value, str) else "")
        raise error(f"{name} must be a torch.nn.Module; found {found(value)}{hint}.")
    return value


def file_path(name: str, value: object, *, error: ErrorType) -> Path:
    """A file path argument: a str or os.PathLike, without NUL characters."""
    if not isinstance(value, (str, os.PathLike)):
        raise error(f"{name} must be a file path (str or os.PathLike); found {found(value)}.")
    text = os.fspath(value)
    if not isinstance(text, str):
        raise error(f"{name} must be a file path as text; found {found(value)}.")
    if "\x00" in text:
        raise error(f"{name} {text!r} holds a NUL character, which no file name can contain.")
    return Path(text)
