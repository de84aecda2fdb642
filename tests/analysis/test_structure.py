"""The analysis package stays light and takes the outcome names from faultzoo.outcome."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

from faultzoo.analysis.table import OPTIONAL_COLUMNS, FaultTable
from faultzoo.outcome import NONFINITE, OUTCOME_KEYS, RATE_KEYS


def test_importing_the_analysis_and_the_cli_loads_no_torch():
    code = ("import sys, faultzoo, faultzoo.analysis, faultzoo.analysis.compare, faultzoo.analysis.simulate, "
            "faultzoo.cli\nprint(sorted(m for m in ('torch', 'tensorflow') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_fault_table_has_a_column_per_outcome():
    columns = [f.name for f in dataclasses.fields(FaultTable)]
    assert set(RATE_KEYS) <= set(columns) and NONFINITE in OPTIONAL_COLUMNS
    assert not set(OUTCOME_KEYS) & set(OPTIONAL_COLUMNS)  # every results file has the outcome classes
