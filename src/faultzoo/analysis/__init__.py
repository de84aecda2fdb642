"""Analysis of campaign results: design-aware estimates with intervals, data-quality checks, reports, planning.

Typical use::

    from faultzoo.analysis import load_results, estimate, write_report, plan_campaign
    results = load_results("demo-out/campaign")      # data-quality checks run on load
    print(results.quality.verdict)
    est = estimate(results, confidence=0.99)
    est.overall["critical"]                          # Estimate(value, low, high, se, ...)
    write_report(results, "demo-out/campaign/report")
    plan = plan_campaign("pilot-run", error=0.01)    # pilot run with --keep-outcomes

Building blocks for other comparisons: :func:`rate_from_counts` (a rate with its interval from
per-fault counts) and :func:`paired_difference` (two result sets on the same faults).

Modules: ``table`` (the fault table and a loaded result set), ``load`` and ``store`` (readers of results
files and campaign stores), ``quality``, ``design`` (the sampling design, :class:`AnalysisDesign`),
``stats``, ``estimate``, ``precision`` (the campaign planner), ``report``, ``plots``, ``compare``,
``simulate``. Every error they raise on purpose is a :class:`~faultzoo.exceptions.FaultzooError`.

``import faultzoo.analysis`` does not import torch: the outcome names (:mod:`faultzoo.outcome`, which
imports torch for its classifier) and the model zoo are imported inside the functions that use them.
"""

from faultzoo.analysis.design import AnalysisDesign
from faultzoo.analysis.estimate import Estimates, GroupEstimate, estimate
from faultzoo.analysis.load import load_results
from faultzoo.analysis.table import FaultTable, Results
from faultzoo.analysis.precision import (
    Plan, VarianceComponents, plan_campaign, variance_components, write_image_sample,
)
from faultzoo.analysis.quality import Finding, QualityReport, check_quality
from faultzoo.analysis.report import Report, write_report
from faultzoo.analysis.stats import Estimate, paired_difference, rate_from_counts, rate_from_outcomes, wilson

__all__ = [
    "AnalysisDesign", "Estimate", "Estimates", "FaultTable", "Finding", "GroupEstimate", "Plan", "QualityReport",
    "Report", "Results", "VarianceComponents", "check_quality", "estimate", "load_results", "paired_difference", "plan_campaign",
    "rate_from_counts", "rate_from_outcomes", "variance_components", "wilson", "write_image_sample", "write_report",
]
