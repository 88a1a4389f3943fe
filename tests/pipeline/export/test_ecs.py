"""ECS: every field name, type and allowed value checked against the official ecs_flat.yml, over the
samples, the whole real corpus and hostile messages."""

from __future__ import annotations

import doctest
import json
from datetime import datetime

import pytest
import yaml

from conftest import shared_path
from umlogs.pipeline.export import ecs, serialize

from .conftest import corpus_records, hostile_records, sample_records

STRINGS = {"keyword", "constant_keyword", "wildcard", "match_only_text", "text", "ip"}
INTEGERS = {"long", "integer", "short", "byte", "unsigned_long"}
NUMBERS = {"float", "double", "scaled_float", "half_float"}


@pytest.fixture(scope="module")
def fields():
    path = shared_path("reference", "ecs_flat.yml")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=loader)


def flatten(doc: dict, prefix: str = "") -> dict:
    """Nested document to dotted leaf names; the custom ``umlogs`` namespace stays one entry."""
    out = {}
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if name == ecs.NAMESPACE:
            out[name] = value
        elif isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def check_value(name: str, value, spec: dict) -> None:
    values = value if "array" in (spec.get("normalize") or []) else [value]
    assert isinstance(values, list), f"{name}: ECS says an array"
    kind = spec["type"]
    for v in values:
        if kind in STRINGS:
            assert isinstance(v, str), f"{name}: {kind} needs a string, got {v!r}"
        elif kind in INTEGERS:
            assert isinstance(v, int) and not isinstance(v, bool), f"{name}: {kind} needs an integer"
        elif kind in NUMBERS:
            assert isinstance(v, int | float) and not isinstance(v, bool), f"{name}: {kind} needs a number"
        elif kind == "boolean":
            assert isinstance(v, bool), name
        elif kind == "date":
            assert isinstance(v, str) and v.endswith("Z"), f"{name}: a UTC date"
            datetime.fromisoformat(v.replace("Z", "+00:00"))
        else:
            pytest.fail(f"{name}: umlogs does not expect to write an ECS {kind} field")
    allowed = [a["name"] for a in spec.get("allowed_values") or []]
    if allowed:
        assert set(values) <= set(allowed), f"{name}: {values} not in {allowed}"


def validate(doc: dict, fields: dict) -> None:
    flat = flatten(doc)
    for name, value in flat.items():
        if name == ecs.NAMESPACE:
            assert isinstance(value, dict)
            continue
        assert name in fields, f"{name} is not an ECS field (custom fields belong under {ecs.NAMESPACE}.*)"
        check_value(name, value, fields[name])
    for required in ("@timestamp", "ecs.version", "event.kind", "event.category", "event.type", "event.id"):
        assert required in flat, f"{required} missing"
    # event.type must be one the category expects.
    categories = {a["name"]: a.get("expected_event_types") or [] for a in fields["event.category"]["allowed_values"]}
    for category in flat["event.category"]:
        assert set(flat["event.type"]) <= set(categories[category]), (category, flat["event.type"])
    assert flat["event.kind"] == ("alert" if "rule.id" in flat else "event")
    # The document is JSON and one line.
    line = serialize(doc)
    assert "\n" not in line and json.loads(line) == doc


def test_custom_namespace_is_not_an_ecs_field_set(fields):
    assert not any(f == ecs.NAMESPACE or f.startswith(ecs.NAMESPACE + ".") for f in fields)


def test_samples_validate_field_by_field(fields):
    records = sample_records()
    assert {r.kind for r in records} == {"event", "finding"}
    for record in records:
        validate(ecs.encode(record), fields)


def test_corpus_validates_and_counts_match(fields, corpus_loaded):
    records = corpus_records(corpus_loaded)
    loaded, findings = corpus_loaded
    docs = [ecs.encode(r) for r in records]
    assert sum(d["event"]["kind"] == "event" for d in docs) == loaded.table.num_rows
    assert sum(d["event"]["kind"] == "alert" for d in docs) == len(findings)
    assert len({d["event"]["id"] for d in docs}) == len(docs), "ids are unique"
    for doc in docs:
        validate(doc, fields)


def test_hostile_messages_stay_in_their_field(fields):
    for record in hostile_records():
        doc = ecs.encode(record)
        validate(doc, fields)
        if record.kind == "event":
            assert doc["message"] == record.data["message"] and doc["event"]["original"] == record.data["raw"]
        else:
            assert doc["rule"]["name"] == record.data["title"]


def test_error_and_rule_fields():
    records = sample_records()
    errors = [ecs.encode(r) for r in records if r.kind == "event" and r.data.get("hresult")]
    assert errors and all(d["error"]["code"].startswith("0x") and d["event"]["outcome"] == "failure" for d in errors)
    alert = next(ecs.encode(r) for r in records if r.kind == "finding")
    assert alert["rule"]["ruleset"] == "umlogs" and alert["rule"]["id"].startswith("UM")
    assert alert["rule"]["reference"].startswith("https://")


def test_time_zone_choice_is_recorded():
    records = sample_records("events")
    classic = [r for r in records if r.data["source"].endswith("classic.log") and r.data.get("timestamp")]
    doc = ecs.encode(classic[0])
    assert doc["event"]["timezone"] == "+02:00" and doc["umlogs"]["time_source"] == "log"
    assert doc["@timestamp"] == "2019-03-14T07:12:03.120000Z"  # 09:12:03.120 at +0200
    windows10 = [r for r in records if r.data["source"].endswith("windows10.log")]
    doc = ecs.encode(windows10[0])
    assert doc["umlogs"]["time_source"] == "assumed_utc" and "timezone" not in doc["event"]
    assert doc["@timestamp"].startswith(windows10[0].data["timestamp"].strftime("%Y-%m-%dT%H:%M:%S"))
    untimed = [r for r in records if r.data.get("timestamp") is None]
    assert untimed and all(ecs.encode(r)["umlogs"]["time_source"] == "export" for r in untimed)


def test_tz_option_applies_where_the_log_is_silent():
    from umlogs.pipeline.export import source

    from .conftest import NOW, SAMPLES

    paths = [SAMPLES / "windows_update" / "windows10.log", SAMPLES / "windows_update" / "classic.log"]
    loaded = source.load(paths)
    docs = [ecs.encode(r) for r in source.records(loaded, what="events", findings=[], tz_offset=-300, now=NOW)]
    by_file = {d["log"]["file"]["path"].rsplit("/", 1)[1]: d for d in docs}
    assert by_file["windows10.log"]["event"]["timezone"] == "-05:00"
    assert by_file["windows10.log"]["umlogs"]["time_source"] == "option"
    assert by_file["classic.log"]["event"]["timezone"] == "+02:00"  # the log's own offset wins


def test_output_is_deterministic():
    first = [serialize(ecs.encode(r)) for r in sample_records()]
    assert first == [serialize(ecs.encode(r)) for r in sample_records()]


def test_doctests():
    from umlogs.pipeline.export import record, run, source

    for module in (ecs, record, source, run):
        assert doctest.testmod(module).failed == 0


def test_files_bundle_and_dataset_export_the_same_events(tmp_path):
    """Records out = events in, whichever way the logs come: files, a bundle archive, a dataset."""
    import tarfile

    from typer.testing import CliRunner

    from umlogs.pipeline.cli import app
    from umlogs.pipeline.export import source
    from umlogs.pipeline.ingest import Options, ingest

    from .conftest import SAMPLES

    logs = sorted((SAMPLES / "windows_update").glob("*.log"))
    bundle = tmp_path / "bundle.tar.gz"
    with tarfile.open(bundle, "w:gz") as tar:
        for log in logs:
            tar.add(log, arcname=f"web01/{log.name}")
    dataset = tmp_path / "dataset"
    ingest([bundle], dataset, Options(workers=1))
    assert source.is_dataset(dataset) and source.is_bundle(bundle) and not source.is_bundle(logs[0])
    runner = CliRunner()
    counts = {}
    for name, args in {"files": [str(p) for p in logs], "bundle": [str(bundle)], "dataset": [str(dataset)]}.items():
        result = runner.invoke(app, ["export", *args, "--format", "ecs", "--what", "events"])
        assert result.exit_code == 0, (name, result.output)
        docs = [json.loads(line) for line in result.stdout.splitlines()]
        counts[name] = len(docs)
        assert all(d["event"]["kind"] == "event" for d in docs)
    expected = sum(len(source.load([p]).table) for p in logs)
    assert counts == {"files": expected, "bundle": expected, "dataset": expected}
    hosts = {json.loads(line)["host"]["name"] for line in runner.invoke(
        app, ["export", str(dataset), "--format", "ecs", "--what", "events"]).stdout.splitlines()}
    assert hosts == {"web01"}, "the bundle's layout names the host"
