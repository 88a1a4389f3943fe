"""The rule catalog as a whole: every rule well formed, unique, documented, and proven by its fixtures."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import ROOT, SAMPLES, shared_path
from umlogs.pipeline.classify import check_rules, classify_table
from umlogs.pipeline.parse import parse_file
from umlogs.pipeline.rules import SCENARIOS, RuleError, load_rule, load_rules
from umlogs.pipeline.store import events_table
from umlogs.pipeline.docs import rules_markdown

RULES = load_rules()


def findings_for(path: Path, rules=RULES):
    result = parse_file(path)
    assert result.error is None, (path, result.error)
    assert result.issues == [], (path, result.issues[:3])
    return classify_table(events_table(result.events), rules)


def fixture(rule_id: str, kind: str) -> Path:
    matches = sorted((SAMPLES / "rules" / rule_id).glob(f"{kind}.*"))
    assert len(matches) == 1, f"samples/rules/{rule_id}/{kind}.* must exist exactly once"
    return matches[0]


def test_ids_are_unique_and_match_file_names():
    assert len({r.id for r in RULES}) == len(RULES)
    for rule in RULES:
        assert Path(rule.path).name.startswith(rule.id + "_"), rule.path


def test_every_rule_compiles_against_the_event_schema():
    check_rules(RULES)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_rule_fields_and_scenario(rule):
    assert rule.scenario in SCENARIOS, f"{rule.id}: {rule.scenario} is not a section of the guide"
    assert rule.reference.split("#")[-1] in SCENARIOS or "://" in rule.reference
    assert rule.why, f"{rule.id} must say why it has its severity"
    for text in (rule.title, rule.cause, rule.resolution):
        assert len(text) > 10


def test_scenarios_are_anchors_of_the_guide():
    guide = shared_path("seed", "update-management-troubleshooting.md").read_text(encoding="utf-8")
    anchors = set(re.findall(r'name="([a-z0-9-]+)"', guide.replace("&quot;", '"').replace('&lt;a name="', 'name="')))
    anchors |= set(re.findall(r'a name=&quot;([a-z0-9-]+)&quot;', guide))
    assert set(SCENARIOS) <= anchors, set(SCENARIOS) - anchors


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_match_fixture_raises_the_rule(rule):
    found = [f for f in findings_for(fixture(rule.id, "match")) if f.rule_id == rule.id]
    assert found, f"{rule.id}: match fixture raised nothing"
    for f in found:
        assert f.evidence and f.count >= 1 and f.reference.endswith(rule.reference)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_nomatch_fixture_does_not(rule):
    found = [f for f in findings_for(fixture(rule.id, "nomatch")) if f.rule_id == rule.id]
    assert not found, f"{rule.id}: nomatch fixture raised {found[0]}"


def test_docs_rules_md_is_generated_from_the_rule_files():
    assert (ROOT / "docs" / "rules.md").read_text(encoding="utf-8") == rules_markdown(RULES), (
        "docs/rules.md is stale: run `python -m umlogs.pipeline.docs`"
    )


# --- malformed and hostile rules ----------------------------------------------------------------

GOOD = '''id = "UX9001"
title = "A user rule"
scenario = "hresult"
severity = "warning"
cause = "Something happened."
resolution = "Do something about it."
reference = "hresult"
sql = "SELECT event_id FROM events WHERE hresult = '0x80244010'"
'''


def write_rule(folder: Path, text: str, name: str = "UX9001_user.toml") -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_user_rule_directory_adds_rules(tmp_path):
    write_rule(tmp_path / "mine", GOOD)
    rules = load_rules((tmp_path / "mine",))
    assert "UX9001" in {r.id for r in rules}
    found = findings_for(fixture("UM1008", "match"), rules)
    assert any(f.rule_id == "UX9001" and f.hresult is None for f in found)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("id = ", "not valid TOML"),
        (GOOD.replace('severity = "warning"\n', ""), "missing severity"),
        (GOOD.replace('"warning"', '"loud"'), "severity 'loud'"),
        (GOOD.replace('id = "UX9001"', 'id = "UM1001"'), "already used"),
    ],
)
def test_malformed_rule_files_are_reported_with_their_path(tmp_path, text, problem):
    path = write_rule(tmp_path / "bad", text)
    with pytest.raises(RuleError, match=re.escape(problem)) as error:
        load_rules((tmp_path / "bad",))
    assert str(path) in str(error.value)


@pytest.mark.parametrize(
    ("sql", "problem"),
    [
        ("SELECT event_id FROM no_such_table", "sql does not run"),
        ("SELECT message FROM events", "must return an event_id"),
        ("DELETE FROM events", "exactly one SELECT"),
        ("SELECT event_id FROM events; SELECT 1", "exactly one SELECT"),
        ("SELECT column0 AS event_id FROM read_csv('/etc/passwd')", "sql does not run"),
        ("SELECT 'x' AS event_id FROM read_text('/etc/hostname')", "sql does not run"),
    ],
)
def test_sql_that_fails_or_reaches_outside_is_refused(tmp_path, sql, problem):
    write_rule(tmp_path / "bad", GOOD.split("sql =")[0] + f'sql = """{sql}"""\n')
    rules = load_rules((tmp_path / "bad",))
    with pytest.raises(RuleError, match=re.escape(problem)):
        check_rules(rules)


def test_load_rule_reads_one_file(tmp_path):
    rule = load_rule(write_rule(tmp_path, GOOD))
    assert (rule.id, rule.severity, rule.reference_url.rsplit("#", 1)[-1]) == ("UX9001", "warning", "hresult")
