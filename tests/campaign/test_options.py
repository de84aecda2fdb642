"""One declaration of a campaign's options: run_campaign, CampaignSpec and `faultzoo campaign` agree with it,
and the library validates once, naming the parameter (the command line names its flag)."""

from __future__ import annotations

import dataclasses
import inspect

import click
import pytest
import typer.main
from hypothesis import given, settings
from hypothesis import strategies as st

from faultzoo.campaign.options import CAMPAIGN_OPTIONS, check_options, flag_of, option
from faultzoo.campaign.runner import run_campaign
from faultzoo.campaign.spec import CampaignSpec
from faultzoo.cli import app
from faultzoo.exceptions import OptionError

# Spec fields that hold what an option became (a model object, data read into memory) rather than an option.
SPEC_DERIVED = {"model_id", "module", "selection"}


def _campaign_command() -> click.Command:
    return typer.main.get_command(app).commands["campaign"]


def test_run_campaign_takes_exactly_the_declared_options_with_their_defaults():
    parameters = inspect.signature(run_campaign).parameters
    assert list(parameters) and set(parameters) == {o.name for o in CAMPAIGN_OPTIONS}
    for o in CAMPAIGN_OPTIONS:
        default = parameters[o.name].default
        if default is not inspect.Parameter.empty:
            assert default == o.default, o.name
    assert all(f"        {o.name}: {o.help}" in run_campaign.__doc__ for o in CAMPAIGN_OPTIONS)


def test_campaign_spec_fields_are_the_declared_spec_options():
    fields = {f.name for f in dataclasses.fields(CampaignSpec)}
    declared = {o.name for o in CAMPAIGN_OPTIONS if o.spec}
    assert fields - SPEC_DERIVED == declared - {"model"}
    for f in dataclasses.fields(CampaignSpec):
        if f.name in declared and f.default is not dataclasses.MISSING and f.name != "engine_options":
            assert f.default == option(f.name).default, f.name


def test_the_campaign_command_offers_every_flag_with_the_declared_default_and_help():
    command = _campaign_command()
    by_flag = {flag: p for p in command.params for flag in getattr(p, "opts", ()) if flag.startswith("--")}
    flagged = [o for o in CAMPAIGN_OPTIONS if o.flag]
    assert {o.flag for o in flagged} == set(by_flag) - {"--help"}
    for o in flagged:
        param = by_flag[o.flag]
        assert param.help.startswith(o.help), o.name
        if o.name not in ("weights", "data_root", "output", "faults"):  # paths and 'none' are spelled for the shell
            assert param.default == o.default, o.name


def test_the_command_line_does_not_recheck_what_the_library_checks(tmp_path):
    """--fault-limit with --fault-sample is a valid combination (the sample is drawn from the first N)."""
    assert check_options({"fault_limit": 10, "fault_sample": 5}) is None
    command = _campaign_command()
    assert all(not getattr(p, "min", None) for p in command.params)  # ranges are the library's


@pytest.mark.parametrize(("values", "parameter"), [
    ({"fault_sample": -5}, "fault_sample"),
    ({"fault_limit": 0}, "fault_limit"),
    ({"batch_size": 1}, "batch_size"),
    ({"workers": True}, "workers"),
    ({"limit": 2.5}, "limit"),
    ({"tf32": "yes"}, "tf32"),
    ({"callbacks": "print"}, "callbacks"),
    ({"dask": "local:2", "workers": 2}, "dask"),
])
def test_a_wrong_value_names_its_parameter_and_the_flag_it_has_on_the_command_line(values, parameter):
    with pytest.raises(OptionError) as caught:
        check_options(values)
    assert caught.value.parameter == parameter and str(caught.value).startswith(f"{parameter}=")
    flag = flag_of(parameter)
    if flag:
        assert caught.value.message(flag).startswith(f"{flag} ")


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from([o.name for o in CAMPAIGN_OPTIONS]),
       value=st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=True), st.text(max_size=5),
                       st.binary(max_size=3), st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=2),
                                                                                                   st.integers(),
                                                                                                   max_size=1)))
def test_any_value_of_any_option_is_accepted_or_refused_with_an_option_error(name, value):
    try:
        check_options({name: value})
    except OptionError as exc:
        assert exc.parameter == name


def test_the_cli_prints_a_library_error_with_the_flag(tmp_path, capsys):
    from faultzoo.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(["campaign", "cifar10/resnet20", "--faults", str(tmp_path / "x.csv"), "-o", str(tmp_path / "o"),
              "--fault-sample", "-5"])
    assert stopped.value.code == 2  # a usage error
    err = capsys.readouterr().err
    assert "--fault-sample -5: expected an integer >= 1." in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
