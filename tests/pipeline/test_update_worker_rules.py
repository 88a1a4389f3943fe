"""The update_worker rules over the update_worker samples: the findings each sample must raise, and
none at warning or above on a clean run (apt exit 0, yum check-update exit 100, all checks Passed)."""

from __future__ import annotations

import pytest

from conftest import SAMPLES
from umlogs.pipeline.classify import classify_table
from umlogs.pipeline.parse import parse_file
from umlogs.pipeline.rules import load_rules
from umlogs.pipeline.store import events_table

SAMPLE_DIR = SAMPLES / "update_worker"


def _findings(name: str):
    result = parse_file(SAMPLE_DIR / name)
    assert result.issues == []
    return classify_table(events_table(result.events), load_rules())


@pytest.mark.parametrize(
    "name",
    ["omsupdatemgmt-clean-apt.log", "omsupdatemgmt-clean-yum.log", "troubleshooter-passed.log"],
)
def test_clean_runs_raise_no_warning_or_error(name):
    assert [(f.rule_id, f.severity) for f in _findings(name) if f.severity != "info"] == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("omsupdatemgmt-apt.log", {"UM2001", "UM2002", "UM2003", "UM2004", "UM2005", "UM2006"}),
        ("omsupdatemgmt-yum.log", {"UM2004", "UM2006", "UM2007", "UM2013"}),
        ("worker.log", {"UM2008", "UM2009", "UM2010", "UM2011", "UM2012"}),
        ("troubleshooter.log", {"UM2103", "UM2104", "UM2106", "UM2107", "UM2110"}),
        ("troubleshooter.json", {"UM2101", "UM2102", "UM2105", "UM2108", "UM2109", "UM2110", "UM2111"}),
    ],
)
def test_failing_samples_raise_their_findings(name, expected):
    assert {f.rule_id for f in _findings(name) if f.rule_id.startswith("UM2")} == expected


def test_benign_return_codes_are_not_failures():
    findings = {f.rule_id: f for f in _findings("omsupdatemgmt-yum.log")}
    assert "UM2002" not in findings  # yum check-update exit 1 is not an error for yum
    assert findings["UM2013"].hresult == "0x800705B4"
    apt = {f.rule_id: f for f in _findings("omsupdatemgmt-apt.log")}
    assert apt["UM2002"].count == 3 and apt["UM2002"].detail == "apt exited with 100"
