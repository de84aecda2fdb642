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
    expected. The command line prints the parameter as its flag (``fault_sample`` -> ``--fault-sample``)."""

    def __init__(self, parameter: str, value: object, expected: str):
        self.parameter, self.value, self.expected = parameter, value, expected
        super().__init__(self.message())

    def message(self, name: str | None = None) -> str:
        """The message, with the parameter called ``name`` (default: its Python name; a flag such as
        ``--fault-sample`` is printed as the command line takes it)."""
        if name and name.startswith("-"):
            return f"{name} {self.value}: {self.expected}"
        return f"{name or self.parameter}={self.value!r}: {self.expected}"

    def __reduce__(self):  # survives pickling between processes
        return type(self), (self.parameter, self.value, self.expected)
