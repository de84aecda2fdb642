"""Reading and writing fault lists: upstream PyTorch, results and Keras CSVs, and our own format.

Formats (detected on read):

* ``torch``: upstream ``Injection,Layer,TensorIndex,Bit``; Layer is the tensor name without
  ``.weight``; TensorIndex is a quoted tuple in PyTorch order, ``"(3, 0, 2, 1)"``. An upstream
  results list appends ``n_injections,masked,non_critical,critical``; any extra columns are kept
  in ``FaultList.extra`` and written back.
* ``keras``: the same columns with Keras layer names and Keras kernel index order (reading and
  writing need the PyTorch model for the name mapping).
* ``faultzoo``: one self-describing CSV file::

      # faultzoo fault list v1
      # meta: {"design": "network", ..., "fingerprint": "<sha256>"}
      Injection,Param,TensorIndex,Bits,Kind
      0,conv1.weight,"(3, 0, 2, 1)",15,bitflip

  ``Bits`` joins several bits with ``;``. The metadata line is canonical JSON (sorted keys); the
  fingerprint of the rows is checked on read. Lines starting with ``#`` are comments, so pandas
  reads the table with ``comment="#"``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn

from faultzoo._files import atomic_write
from faultzoo.exceptions import FaultError, FaultListFormatError, OutputError, found
from faultzoo.faults._args import file_path, module, optional_str
from faultzoo.faults.keras import (
    KERAS_NAME, keras_layer_names, keras_name_to_param, keras_to_torch_index, to_keras, torch_to_keras_index,
)
from faultzoo.faults.model import Fault, FaultKind, FaultList, FaultListMeta, meta_json
from faultzoo.faults.validate import check_unique_ids, validate
from faultzoo.layouts import FAULTZOO_LIST_COLUMNS, UPSTREAM_LIST_COLUMNS, UPSTREAM_RESULT_COLUMNS

FORMATS = ("faultzoo", "torch", "keras")
MAGIC = "# faultzoo fault list v1"
META_PREFIX = "# meta: "
# Column names as faultzoo.layouts declares them.
UPSTREAM_COLUMNS, RESULT_COLUMNS, OUR_COLUMNS = UPSTREAM_LIST_COLUMNS, UPSTREAM_RESULT_COLUMNS, FAULTZOO_LIST_COLUMNS
_TENSOR_SUFFIXES = (".weight", ".bias", ".running_mean", ".running_var")
_UPSTREAM_NAME = re.compile(r"^(cifar10|cifar100|gtsrb)_(.+?)_(?:torch|keras)_FL(?:_results)?\.csv$", re.IGNORECASE)
_INT = re.compile(r"^[+-]?\d+$")


# --------------------------------------------------------------------------- parsing helpers


class _Rows:
    """CSV rows of a file with their line numbers, header checked by name (never by position)."""

    def __init__(self, path: Path, text: str, first_line: int, required: Sequence[str]) -> None:
        self.path = path
        reader = csv.reader(io.StringIO(text))
        try:
            header = next(reader)
        except StopIteration:
            raise self.error(first_line, "the file has no header row", ",".join(required), "an empty file") from None
        except csv.Error as exc:
            raise self.error(first_line, f"the header row is not CSV ({exc})", ",".join(required), text[:80]) from None
        # A pandas-written file may lead with an unnamed index column: ignore it.
        self.skip_first = bool(header) and header[0].strip() in ("", "Unnamed: 0")
        header = [h.strip() for h in header[1 if self.skip_first else 0:]]
        missing = [c for c in required if c not in header]
        if missing:
            raise self.error(first_line, f"missing column(s) {', '.join(missing)}", ",".join(required),
                             ",".join(header))
        dupes = sorted({c for c in header if header.count(c) > 1})
        if dupes:
            raise self.error(first_line, f"repeated column(s) {', '.join(dupes)}", "unique column names",
                             ",".join(header))
        self.header = header
        self.col = {name: i for i, name in enumerate(header)}
        self.extra = [c for c in header if c not in required]
        self.reader = reader
        self.offset = first_line - 1

    def error(self, line: int, what: str, expected: str, found: str) -> FaultListFormatError:
        shown = found if len(found) <= 120 else found[:117] + "..."
        return FaultListFormatError(f"{self.path}, line {line}: {what}; expected {expected}, found {shown!r}.")

    def __iter__(self):  # type: ignore[no-untyped-def]
        while True:
            try:
                row = next(self.reader)
            except StopIteration:
                return
            except csv.Error as exc:  # a NUL character, a field over the csv module's size limit, ...
                line = self.reader.line_num + self.offset
                raise FaultListFormatError(f"{self.path}, line {line}: not a CSV row ({exc}); expected "
                                           f"{len(self.header)} comma-separated columns "
                                           f"({','.join(self.header)}).") from None
            line = self.reader.line_num + self.offset
            if not row or all(not cell.strip() for cell in row):
                continue
            if self.skip_first:
                row = row[1:]
            if len(row) != len(self.header):
                raise self.error(line, "wrong number of columns", f"{len(self.header)} ({','.join(self.header)})",
                                 ",".join(row))
            yield line, row

    def int_field(self, line: int, row: list[str], name: str) -> int:
        text = row[self.col[name]].strip()
        value = _int(text)
        if value is None:
            raise self.error(line, f"{name} is not an integer", "an integer", text)
        if value < 0:
            raise self.error(line, f"{name} is negative", "a value >= 0", text)
        return value

    def index_field(self, line: int, row: list[str]) -> tuple[int, ...]:
        text = row[self.col["TensorIndex"]].strip()
        if len(text) < 2 or text[0] not in "([" or text[-1] not in ")]":
            raise self.error(line, "malformed TensorIndex", 'a tuple such as "(3, 0, 2, 1)"', text)
        parts = [p.strip() for p in text[1:-1].split(",")]
        if parts and parts[-1] == "" and len(parts) > 1:  # "(5,)"
            parts = parts[:-1]
        index = tuple(_int(p) for p in parts)
        if not parts or None in index:
            raise self.error(line, "malformed TensorIndex", 'a tuple of integers such as "(3, 0, 2, 1)"', text)
        if any(i < 0 for i in index):
            raise self.error(line, "negative TensorIndex entry", "indices >= 0", text)
        return index

    def bits_field(self, line: int, row: list[str], name: str) -> tuple[int, ...]:
        text = row[self.col[name]].strip()
        bits = tuple(_int(p.strip()) for p in text.split(";"))
        if not text or None in bits:
            raise self.error(line, f"{name} is not a bit number", "an integer (several joined by ';')", text)
        if any(not 0 <= b < 64 for b in bits):
            raise self.error(line, f"{name} out of range", "0..63 (0..31 for float32)", text)
        return bits


def _int(text: str) -> int | None:
    """The integer a cell holds, or None (not an integer, or too many digits for int())."""
    if not _INT.match(text):
        return None
    try:
        return int(text)
    except ValueError:  # over 4,300 digits
        return None


def _cell_value(text: str) -> Any:
    text = text.strip()
    number = _int(text)
    if number is not None:
        return number
    try:
        return float(text)
    except ValueError:
        return text


def _detect_model_id(path: Path, model: nn.Module | None, model_id: str | None) -> str | None:
    if model_id is not None:
        from faultzoo.zoo.recipes import model_label

        return model_label(model_id)
    provenance = getattr(model, "faultzoo", None)
    if getattr(provenance, "model_id", None):
        return str(provenance.model_id)  # type: ignore[union-attr]
    match = _UPSTREAM_NAME.match(path.name)
    return f"{match.group(1).lower()}/{match.group(2)}" if match else None


# --------------------------------------------------------------------------- reading


def read_fault_list(
    path: str | os.PathLike[str],
    model: nn.Module | None = None,
    *,
    model_id: str | None = None,
    format: str = "auto",
    identify: bool = True,
    allow_duplicate_faults: bool = False,
) -> FaultList:
    """Read a fault list in any supported format (see the module docstring).

    Args:
        path: the CSV file.
        model: the PyTorch model; needed for Keras lists, and when given every fault is validated
            against it (layer exists, index in bounds, bit inside the word).
        model_id: recorded in the metadata; for our format it must match the id the list was made for.
        format: ``"auto"`` (detect), ``"faultzoo"``, ``"torch"`` or ``"keras"``.
        identify: for upstream lists with a model, recognise a list that the dnn-benchmarks design
            generates exactly and adopt that design's metadata (N, n, strata) for the analysis.

    Raises:
        FaultListFormatError: unreadable file, malformed row, unknown layer, index or bit out of
            range, duplicate Injection ids; the message names the file and line.
    """
    path = file_path("path", path, error=FaultListFormatError)
    if not isinstance(format, str) or format not in ("auto", *FORMATS):
        raise FaultListFormatError(f"Unknown fault-list format {found(format)}; choose auto, {', '.join(FORMATS)}.")
    if model is not None:
        module(model, name="model (the PyTorch model the list is for, or None)", error=FaultListFormatError)
    optional_str("model_id", model_id, expected="a model id such as 'cifar10/resnet20', or None",
                 error=FaultListFormatError)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FaultListFormatError(f"Fault list {path} does not exist; check the path.") from None
    except IsADirectoryError:
        raise FaultListFormatError(f"Fault list {path} is a folder; pass the CSV file inside it.") from None
    except UnicodeDecodeError as exc:
        raise FaultListFormatError(f"Cannot read fault list {path}: it is not UTF-8 text (byte {exc.start}: "
                                   f"{exc.reason}); expected a CSV file.") from None
    except OSError as exc:
        raise FaultListFormatError(f"Cannot read fault list {path}: {exc.strerror or exc}.") from None
    ours = format == "faultzoo" or (format == "auto" and text.startswith(MAGIC))
    if ours:
        fault_list = _read_ours(path, text, model_id)
    else:
        fault_list = _read_upstream(path, text, model, format)
        fault_list = fault_list.with_meta(model_id=_detect_model_id(path, model, model_id))
    if len(fault_list) == 0:
        raise FaultListFormatError(f"Fault list {path} holds no faults (a header and no rows): nothing to inject.")
    check_unique_ids(fault_list)
    if model is not None:
        validate(fault_list, model, model_id=model_id, allow_duplicate_faults=allow_duplicate_faults)
        if identify and not ours:
            fault_list = _identify(fault_list, model)  # only a list that fits the model can be the design's
    return fault_list


def _read_ours(path: Path, text: str, model_id: str | None) -> FaultList:
    lines = text.splitlines()
    if not lines or lines[0].strip() != MAGIC:
        first = lines[0][:120] if lines else ""
        raise FaultListFormatError(f"{path}, line 1: not a faultzoo fault list; expected {MAGIC!r}, found {first!r}.")
    meta_data: dict[str, Any] | None = None
    n_comments = 0
    for number, line in enumerate(lines, start=1):
        if not line.startswith("#"):
            break
        n_comments = number
        if line.startswith(META_PREFIX):
            try:
                meta_data = json.loads(line[len(META_PREFIX):])
            except json.JSONDecodeError as exc:
                raise FaultListFormatError(f"{path}, line {number}: the metadata is not valid JSON ({exc.msg} at "
                                           f"column {exc.colno + len(META_PREFIX)}).") from None
            except (ValueError, RecursionError) as exc:  # nesting too deep, a number of thousands of digits
                raise FaultListFormatError(f"{path}, line {number}: the metadata cannot be read as JSON "
                                           f"({type(exc).__name__}: {str(exc)[:80]}).") from None
            if not isinstance(meta_data, dict):
                raise FaultListFormatError(f"{path}, line {number}: the metadata must be a JSON object "
                                           f"({{\"design\": ...}}); found {found(meta_data)}.")
    if meta_data is None:
        raise FaultListFormatError(f"{path}: no '{META_PREFIX.strip()}' line in the header comments; "
                                   "expected the JSON metadata on line 2.")
    body = "\n".join(lines[n_comments:])
    rows = _Rows(path, body, n_comments + 1, OUR_COLUMNS)
    faults, ids, line_numbers = [], [], []
    extra: dict[str, list[Any]] = {c: [] for c in rows.extra}
    for line, row in rows:
        kind_text = row[rows.col["Kind"]].strip()
        try:
            kind = FaultKind(kind_text)
        except ValueError:
            raise rows.error(line, "unknown Kind", "/".join(k.value for k in FaultKind), kind_text) from None
        param = row[rows.col["Param"]].strip()
        if not param:
            raise rows.error(line, "empty Param", "a tensor name such as conv1.weight", "")
        ids.append(rows.int_field(line, row, "Injection"))
        faults.append(Fault(param, rows.index_field(line, row), rows.bits_field(line, row, "Bits"), kind))
        line_numbers.append(line)
        for c in rows.extra:
            extra[c].append(_cell_value(row[rows.col[c]]))
    expected_fp = meta_data.pop("fingerprint", None)
    if expected_fp is not None and not isinstance(expected_fp, str):
        raise FaultListFormatError(f"{path}, line 2: malformed metadata: the fingerprint must be a sha256 hex "
                                   f"string; found {found(expected_fp)}.")
    try:
        meta = FaultListMeta.from_dict(meta_data, source_file=str(path), source_format="faultzoo")
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise FaultListFormatError(f"{path}, line 2: malformed metadata ({type(exc).__name__}: {str(exc)[:120]}).") \
            from None
    fault_list = FaultList(tuple(faults), meta, tuple(ids), extra, tuple(line_numbers))
    if expected_fp is not None and fault_list.fingerprint() != expected_fp:
        raise FaultListFormatError(
            f"{path}: the rows do not match the fingerprint in the metadata (expected {expected_fp[:16]}..., found "
            f"{fault_list.fingerprint()[:16]}...): the file was edited after it was written, so its design metadata "
            "no longer describes it. Regenerate it, or delete the \"fingerprint\" entry to accept the edit.")
    if model_id is not None:
        from faultzoo.zoo.recipes import model_label

        # A list made for lab_nets.py:build fits ./lab_nets.py:build and /abs/lab_nets.py:build alike.
        if meta.model_id is not None and model_label(meta.model_id) != model_label(model_id):
            raise FaultListFormatError(f"{path}: the list was made for model {meta.model_id!r}, not {model_id!r}; "
                                       f"generate one for {model_id!r}: {generate_command(model_id, path)}")
        if meta.model_id is None:
            fault_list = fault_list.with_meta(model_id=model_label(model_id))
    return fault_list


def generate_command(model_id: str, beside: Path) -> str:
    """The `faultzoo faultlist` command (in backquotes) that writes a list of the default design for
    ``model_id`` into a new file beside ``beside`` (never over it)."""
    import shlex

    from faultzoo.zoo.recipes import model_label

    stem = re.sub(r"[^A-Za-z0-9]+", "_", model_label(model_id)).strip("_") or "model"
    out = beside.with_name(f"{stem}_FL.csv")
    if out.name == beside.name:
        out = beside.with_name(f"{stem}_FL_new.csv")
    return f"`faultzoo faultlist {shlex.quote(model_id)} -o {shlex.quote(str(out))}`"


def _read_upstream(path: Path, text: str, model: nn.Module | None, format: str) -> FaultList:
    rows = _Rows(path, text, 1, UPSTREAM_COLUMNS)
    parsed: list[tuple[int, int, str, tuple[int, ...], int]] = []
    extra: dict[str, list[Any]] = {c: [] for c in rows.extra}
    for line, row in rows:
        layer = row[rows.col["Layer"]].strip()
        if not layer:
            raise rows.error(line, "empty Layer", "a layer name such as conv1", "")
        bits = rows.bits_field(line, row, "Bit")
        if len(bits) != 1:
            raise rows.error(line, "several bits in an upstream list", "one bit", row[rows.col["Bit"]])
        parsed.append((line, rows.int_field(line, row, "Injection"), layer, rows.index_field(line, row), bits[0]))
        for c in rows.extra:
            extra[c].append(_cell_value(row[rows.col[c]]))
    layers = {p[2] for p in parsed}
    if format == "auto":
        format = _guess_flavour(layers, model)
    if format == "keras":
        faults = _from_keras_rows(path, parsed, model)
    else:
        tensors = _tensor_names(model) if model is not None else None
        faults = [Fault(_param_of(layer, tensors), index, (bit,), FaultKind.BITFLIP)
                  for _, _, layer, index, bit in parsed]
    meta = FaultListMeta(design="unknown", kind=FaultKind.BITFLIP, source_file=str(path), source_format=format,
                         design_params={}, targets=("weights",))
    return FaultList(tuple(faults), meta, tuple(p[1] for p in parsed), extra, tuple(p[0] for p in parsed))


def _tensor_names(model: nn.Module) -> set[str]:
    return {n for n, _ in model.named_parameters()} | {n for n, _ in model.named_buffers()}


def _param_of(layer: str, tensors: set[str] | None) -> str:
    """Upstream Layer -> tensor name: ``conv1`` -> ``conv1.weight``; a full tensor name stays as it is."""
    if tensors is not None:
        if f"{layer}.weight" in tensors:
            return f"{layer}.weight"
        if layer in tensors:
            return layer
    return layer if layer.endswith(_TENSOR_SUFFIXES) else f"{layer}.weight"


def _guess_flavour(layers: set[str], model: nn.Module | None) -> str:
    if model is not None:
        tensors = _tensor_names(model)
        if all(f"{layer}.weight" in tensors or layer in tensors for layer in layers):
            return "torch"
    if layers and all(KERAS_NAME.match(layer) for layer in layers):
        return "keras"
    return "torch"


def _from_keras_rows(path: Path, parsed: list[tuple[int, int, str, tuple[int, ...], int]],
                     model: nn.Module | None) -> list[Fault]:
    if model is None:
        raise FaultListFormatError(f"{path} is a Keras fault list (layers conv2d, dense, ...): reading it needs the "
                                   "PyTorch model to map Keras names back (model=..., CLI --model).")
    inverse = keras_name_to_param(model)
    faults = []
    for line, _, layer, index, bit in parsed:
        if layer not in inverse:
            known = sorted(inverse, key=lambda n: (n.split("_")[0], int(n.split("_")[1]) if "_" in n else 0))
            if not known:
                raise FaultListFormatError(f"{path}, line {line}: a Keras layer {layer!r}, but the model has no conv "
                                           "or linear layer whose weight a Keras list could name; is it the right "
                                           "model?")
            raise FaultListFormatError(
                f"{path}, line {line}: unknown Keras layer {layer!r}; expected one of the model's {len(known)} "
                f"twin layers ({known[0]} .. {known[-1]}), found {layer!r}.")
        try:
            torch_index = keras_to_torch_index(index)
        except FaultError as exc:
            raise FaultListFormatError(f"{path}, line {line}: {exc}") from None
        faults.append(Fault(inverse[layer], torch_index, (bit,), FaultKind.BITFLIP))
    return faults


def _identify(fault_list: FaultList, model: nn.Module) -> FaultList:
    """Adopt the dnn-benchmarks metadata when that design regenerates exactly these faults."""
    from faultzoo.faults.sampling import dnn_benchmarks_fault_list

    try:
        reference = dnn_benchmarks_fault_list(model, model_id=fault_list.meta.model_id)
    except FaultError:
        return fault_list
    if len(reference) != len(fault_list) or reference.fingerprint() != fault_list.fingerprint():
        return fault_list
    meta = fault_list.meta
    return fault_list.with_meta(**{
        **{f: getattr(reference.meta, f) for f in ("design", "design_params", "population_size", "sample_size",
                                                   "strata", "seed", "kind", "targets", "bits")},
        "source_file": meta.source_file, "source_format": meta.source_format,
    })


# --------------------------------------------------------------------------- writing


def _quote(value: Any) -> str:
    text = str(value)
    if any(ch in text for ch in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _extra_cells(fault_list: FaultList, position: int) -> str:
    return "".join("," + _quote(column[position]) for column in fault_list.extra.values())


def _extra_header(fault_list: FaultList, base: Sequence[str]) -> str:
    clash = [c for c in fault_list.extra if c in base]
    if clash:
        raise FaultListFormatError(f"Extra column(s) {clash} clash with the format's own columns {list(base)}.")
    return ",".join([*base, *map(_quote, fault_list.extra)]) + "\n"


def _single_bitflip(fault_list: FaultList, fmt: str) -> None:
    for ident, fault in zip(fault_list.ids or (), fault_list.faults):
        if fault.kind is not FaultKind.BITFLIP or len(fault.bits) != 1:
            raise FaultListFormatError(
                f"Injection {ident}: the {fmt} format holds single bit flips only, found {fault}; "
                "write it with format='faultzoo' (CLI --format faultzoo).")


def format_fault_list(fault_list: FaultList, format: str = "faultzoo", *, model: nn.Module | None = None) -> str:
    """The text of a fault list in a format (what write_fault_list writes)."""
    if not isinstance(fault_list, FaultList):
        raise FaultListFormatError(f"fault_list must be a FaultList (from read_fault_list or a design such as "
                                   f"make_fault_list); found {found(fault_list)}.")
    if not isinstance(format, str) or format not in FORMATS:
        raise FaultListFormatError(f"Unknown fault-list format {found(format)}; choose one of {', '.join(FORMATS)}.")
    if model is not None:
        module(model, name="model (the PyTorch model, for Keras layer names, or None)", error=FaultListFormatError)
    ids = fault_list.ids or ()
    out: list[str] = []
    if format == "faultzoo":
        out.append(MAGIC + "\n")
        out.append(META_PREFIX + meta_json(fault_list.meta, fault_list.fingerprint()) + "\n")
        out.append(_extra_header(fault_list, OUR_COLUMNS))
        for pos, (ident, f) in enumerate(zip(ids, fault_list.faults)):
            out.append(f'{ident},{_quote(f.param)},"{f.index}",{";".join(map(str, f.bits))},{f.kind.value}'
                       f"{_extra_cells(fault_list, pos)}\n")
    elif format == "torch":
        _single_bitflip(fault_list, "upstream torch")
        out.append(_extra_header(fault_list, UPSTREAM_COLUMNS))
        for pos, (ident, f) in enumerate(zip(ids, fault_list.faults)):
            out.append(f'{ident},{_quote(f.layer)},"{f.index}",{f.bits[0]}{_extra_cells(fault_list, pos)}\n')
    elif format == "keras":
        if model is None:
            raise FaultListFormatError("Writing a Keras fault list needs the PyTorch model for the layer names "
                                       "(model=..., CLI --model).")
        _single_bitflip(fault_list, "upstream Keras")
        try:
            rows = to_keras(fault_list, model)
        except FaultError as exc:
            raise FaultListFormatError(str(exc)) from None
        out.append(_extra_header(fault_list, UPSTREAM_COLUMNS))
        for pos, row in enumerate(rows):
            out.append(f'{row.injection},{row.layer},"{row.index}",{row.bit}{_extra_cells(fault_list, pos)}\n')
    else:
        raise FaultListFormatError(f"Unknown fault-list format {format!r}; choose one of {', '.join(FORMATS)}.")
    return "".join(out)


def write_fault_list(
    fault_list: FaultList,
    path: str | os.PathLike[str],
    *,
    format: str = "faultzoo",
    model: nn.Module | None = None,
) -> Path:
    """Write a fault list atomically (temporary file in the same folder, then rename).

    Args:
        fault_list: the list.
        path: destination; its folder is created if needed.
        format: ``"faultzoo"`` (with metadata), ``"torch"`` or ``"keras"`` (upstream layouts;
            single bit flips only; Keras needs ``model``).
        model: the PyTorch model, for the Keras layer names.

    Returns:
        The path written.
    """
    path = file_path("path", path, error=FaultListFormatError)
    text = format_fault_list(fault_list, format, model=model)  # fails before touching the disk
    try:
        return atomic_write(path, text)
    except OutputError:
        raise
    except OSError as exc:  # a file name too long, ...
        raise OutputError(f"Cannot write the fault list {path}: {exc.strerror or exc}. Choose another path.") \
            from None


def upstream_cells(fault_list: FaultList, positions: Sequence[int], model: nn.Module | None = None
                   ) -> list[tuple[str, tuple[int, ...]]]:
    """The ``Layer`` and ``TensorIndex`` cells of the faults at ``positions`` in the layout the list was read
    in: a list read from an upstream Keras file gets Keras layer names and HWIO/IO indices (``model``, the
    PyTorch model, gives the names), any other the PyTorch ones."""
    faults = [fault_list[p] for p in positions]
    if model is None or fault_list.meta.source_format != "keras":
        return [(f.layer, f.index) for f in faults]
    names = keras_layer_names(model)
    return [(names[f.param], torch_to_keras_index(f.index)) for f in faults]
