"""The error contract of run_campaign: any wrong type or value of any option is refused with a FaultzooError
(never a bare ValueError, TypeError or a traceback from deeper down), before anything is written."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from faultzoo.campaign.options import CAMPAIGN_OPTIONS
from faultzoo.campaign.runner import run_campaign
from faultzoo.exceptions import FaultzooError

WRONG = st.one_of(
    st.none(), st.booleans(), st.integers(-(2 ** 40), 2 ** 40), st.floats(allow_nan=True), st.text(max_size=12),
    st.binary(max_size=4), st.lists(st.integers(-2, 2), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(),
                                                                                    max_size=2),
    st.sampled_from(["", " ", "cifar10", "local:0", "tcp://", "cuda:7", "keras", "reference", "-1", "nan"]),
)
NAMES = [o.name for o in CAMPAIGN_OPTIONS if o.name not in ("callbacks", "executor")]


@pytest.fixture(scope="module")
def missing_list(tmp_path_factory):
    return tmp_path_factory.mktemp("contract") / "no-such-list.csv"


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.dictionaries(st.sampled_from(NAMES), WRONG, min_size=1, max_size=3))
def test_wrong_options_raise_only_faultzoo_errors(values, missing_list, tmp_path, no_compute):
    """With a fault list that does not exist nothing can be computed: every call must end in a FaultzooError
    (about the wrong option, or else about the missing list), and leave no output folder behind."""
    values = {"model": "cifar10/resnet20", "faults": missing_list, "output": tmp_path / "run", **values}
    model, faults = values.pop("model"), values.pop("faults")
    with pytest.raises(FaultzooError):
        run_campaign(model, faults, **values)
    output = values.get("output")
    if isinstance(output, (str, os.PathLike)) and str(output).strip():
        assert not (tmp_path / "run").exists()
