"""Exception hierarchy: every error faultzoo raises derives from FaultzooError.

Each class also derives from the builtin a caller would naturally catch
(ValueError, OSError, ...), so ``except ValueError`` keeps working.
Messages follow one shape: what failed, the subject, expected vs found, and how to fix it.
"""

from __future__ import annotations


class FaultzooError(Exception):
    """Base class of all faultzoo errors."""


class UnknownModelError(FaultzooError, ValueError):
    """A model id that is not in the registry."""


class UnknownDatasetError(FaultzooError, ValueError):
    """A dataset name that faultzoo does not know."""


class WeightsUnavailableError(FaultzooError, OSError):
    """No source (cache, mirror, URL) could provide a checkpoint."""


class IntegrityError(FaultzooError, OSError):
    """A file whose sha256 differs from the expected one."""


class CheckpointError(FaultzooError, ValueError):
    """A checkpoint that does not fit the model (missing/unexpected keys, shapes, format)."""


class DatasetError(FaultzooError, ValueError):
    """A dataset that is missing, malformed or does not fit the model."""


class FaultListFormatError(FaultzooError, ValueError):
    """A fault-list file that cannot be parsed or does not fit the model (names file and row)."""


class FaultError(FaultzooError, ValueError):
    """A fault that cannot be applied (bad layer, index, bit or kind)."""


class CampaignMismatchError(FaultzooError, ValueError):
    """Resuming a campaign with a different model, weights, fault list or data selection."""


class CampaignLockedError(FaultzooError, RuntimeError):
    """Another process is running a campaign in the same output folder."""


class SchemaVersionError(FaultzooError, RuntimeError):
    """A result store written by an incompatible schema version."""


class OutputError(FaultzooError, OSError):
    """A file or folder that faultzoo must write cannot be written (permissions, a file in the way, disk full)."""


class ExactnessError(FaultzooError, RuntimeError):
    """A numerical assumption that an exact engine relies on does not hold."""


class FrameworkUnavailableError(FaultzooError, ImportError):
    """An optional framework (TensorFlow/Keras) that a feature needs is not installed or not usable."""


class TranslationError(FaultzooError, ValueError):
    """A PyTorch graph node that the Keras twin builder cannot reproduce (names the node and its kind)."""


class AnalysisError(FaultzooError, ValueError):
    """Results that cannot be analysed: an unreadable or unknown results file, or inconsistent inputs."""


class OptionError(FaultzooError, ValueError):
    """An option of a public function with a wrong value: names the parameter, the value found and what is
    expected. The command line prints the parameter as its flag (``fault_sample`` -> ``--fault-sample``).

    ``usage``: the value is wrong whatever the inputs and the machine (a type, a range, an unknown name):
    the command line exits with status 2, as for its own usage errors; otherwise 1."""

    def __init__(self, parameter: str, value: object, expected: str, *, usage: bool = False):
        self.parameter, self.value, self.expected, self.usage = parameter, value, expected, usage
        super().__init__(self.message())

    def message(self, name: str | None = None) -> str:
        """The message, with the parameter called ``name`` (default: its Python name; a flag such as
        ``--fault-sample`` is printed as the command line takes it)."""
        if name and name.startswith("-"):  # a flag left out (None) is named alone
            return f"{name}{'' if self.value is None else ' ' + _text(self.value, str)}: {self.expected}"
        return f"{name or self.parameter}={_text(self.value, repr)}: {self.expected}"

    def __reduce__(self):  # survives pickling between processes
        return _rebuild_option_error, (self.parameter, self.value, self.expected, self.usage)


def _text(value: object, show=repr) -> str:
    """``show(value)`` (repr or str), or a stand-in where that fails (an int of over 4,300 digits, a broken repr)."""
    try:
        return show(value)
    except Exception:
        return f"<{value.bit_length()}-bit integer>" if isinstance(value, int) else f"<{type(value).__name__}>"


def found(value: object, limit: int = 80) -> str:
    """A wrong value as an error message names it: its (shortened) repr, after its type unless it is a
    string, None or a bool, e.g. ``'x'``, ``None``, ``the float 3.5``, ``the list [1, 2]``. For the
    "expected ..., found ..." part of a message; never fails (even on an int too long to print)."""
    text = _text(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    if value is None or isinstance(value, (bool, str)):
        return text
    return f"the {type(value).__name__} {text}"


def _rebuild_option_error(parameter: str, value: object, expected: str, usage: bool) -> OptionError:
    return OptionError(parameter, value, expected, usage=usage)
