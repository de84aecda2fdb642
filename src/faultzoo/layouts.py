"""File layouts, declared once: the columns of fault lists and results files, the files a campaign folder holds.

Readers and writers in every layer take their columns and file names from here (the fault-list
reader and writer, the campaign's exports, the analysis). Standard library only, so that anything
may import it.
"""

from __future__ import annotations

from faultzoo.outcome import OUTCOME_KEYS, RATE_KEYS

__all__ = ["EXPORT_FILES", "FAULTZOO_LIST_COLUMNS", "RICH_RESULT_COLUMNS", "STORE_NAME", "UPSTREAM_LIST_COLUMNS",
           "UPSTREAM_RESULT_COLUMNS"]

# dnn-benchmarks fault lists (torch and Keras layouts): one row per fault.
UPSTREAM_LIST_COLUMNS = ("Injection", "Layer", "TensorIndex", "Bit")
# ... and its results lists append these (the campaign's counts per fault).
UPSTREAM_RESULT_COLUMNS = ("n_injections", *OUTCOME_KEYS)
# faultzoo's own fault-list format (after its metadata lines).
FAULTZOO_LIST_COLUMNS = ("Injection", "Param", "TensorIndex", "Bits", "Kind")
# faultzoo's results.csv: the fault, its counts per outcome and NaN/Inf flag, and timing.
RICH_RESULT_COLUMNS = ("fault_id", "injection", "param", "index", "bits", "kind", "n", *RATE_KEYS, "faulty_correct",
                       "task_seconds_per_fault")

# A campaign folder: its resumable store and, once the campaign is complete, its exports.
STORE_NAME = "campaign.sqlite"
EXPORT_FILES = {"upstream": "results_upstream.csv", "results": "results.csv", "provenance": "provenance.json",
                "outcomes": "outcomes.npy"}
