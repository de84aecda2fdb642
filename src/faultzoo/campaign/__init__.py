"""Fault-injection campaigns: golden run, engines, outcome classes, resumable store, exports."""

from faultzoo.outcome import Outcome, classify
from faultzoo.campaign.runner import CampaignResult, Progress, run_campaign
from faultzoo.campaign.store import FaultResult, ResultStore
from faultzoo.campaign.summary import CampaignSummary

__all__ = ["CampaignResult", "CampaignSummary", "FaultResult", "Outcome", "Progress", "ResultStore", "classify",
           "run_campaign"]
