"""OCSF: every record validated by pydantic-ocsf's models for the schema version we declare, with a
strict check that no key is unknown to the schema (the models themselves allow extra keys)."""

from __future__ import annotations

import doctest

from pydantic import BaseModel

from umlogs.pipeline.export import ocsf, serialize

from .conftest import corpus_records, hostile_records, sample_records

import ocsf.v1_7_0.events as ocsf_events  # noqa: E402
import ocsf.v1_7_0.objects as ocsf_objects  # noqa: E402
from pydantic.errors import PydanticUndefinedAnnotation  # noqa: E402

MODELS = {6008: ocsf_events.ApplicationError, 2004: ocsf_events.DetectionFinding, 0: ocsf_events.BaseEvent}


def _complete(model) -> None:
    """pydantic-ocsf builds models lazily; BaseEvent needs the object models it names, by name."""
    namespace = {}
    for _ in range(50):
        try:
            model.model_rebuild(_types_namespace=namespace)
            return
        except PydanticUndefinedAnnotation as error:
            namespace[error.name] = _find(error.name)
    raise AssertionError(f"{model.__name__} could not be completed")


def _find(name: str):
    import typing

    import pydantic

    for module in (pydantic, typing):
        if hasattr(module, name):
            return getattr(module, name)
    return getattr(ocsf_objects, name)


for _model in MODELS.values():
    _complete(_model)
FREE_FORM = {"unmapped"}  # OCSF's place for fields the schema does not define


def unknown_keys(model: BaseModel, path: str = "") -> list[str]:
    """Keys pydantic kept as extras (not in the schema), anywhere below ``model``."""
    found = [f"{path}{k}" for k in (model.__pydantic_extra__ or {})]
    for name in type(model).model_fields:
        value = getattr(model, name)
        alias = type(model).model_fields[name].alias or name
        if alias in FREE_FORM:
            continue
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, BaseModel):
                found += unknown_keys(item, f"{path}{alias}.")
    return found


def validate(doc: dict) -> BaseModel:
    assert doc["class_uid"] in MODELS, doc["class_uid"]
    model = MODELS[doc["class_uid"]].model_validate(doc)
    assert unknown_keys(model) == []
    assert doc["type_uid"] == doc["class_uid"] * 100 + doc["activity_id"]
    assert doc["category_uid"] == doc["class_uid"] // 1000
    assert doc["metadata"]["version"] == ocsf.SCHEMA_VERSION and doc["metadata"]["product"]["name"] == "umlogs"
    assert isinstance(doc["time"], int) and doc["severity_id"] in (0, 1, 2, 3, 4, 5, 6, 99)
    assert "\n" not in serialize(doc)
    return model


def test_schema_version_is_the_packages():
    import json
    from importlib import resources

    schema = json.loads(resources.files("ocsf").joinpath("schemas/v1_7_0.json").read_text())
    assert schema["version"] == ocsf.SCHEMA_VERSION
    assert schema["events"]["application_error"]["uid"] == 8  # 6008 in category 6 (Application)
    assert schema["events"]["detection_finding"]["uid"] == 4  # 2004 in category 2 (Findings)


def test_samples_validate():
    classes = set()
    for record in sample_records():
        doc = ocsf.encode(record)
        validate(doc)
        classes.add(doc["class_uid"])
    assert classes == {0, 2004, 6008}


def test_unknown_key_is_caught():
    doc = ocsf.encode(sample_records("events")[0])
    doc["surprise"] = 1
    doc["metadata"]["product"]["nonsense"] = 2
    model = MODELS[doc["class_uid"]].model_validate(doc)
    assert sorted(unknown_keys(model)) == ["metadata.product.nonsense", "surprise"]


def test_finding_is_a_detection_finding():
    record = next(r for r in sample_records() if r.kind == "finding")
    doc = ocsf.encode(record)
    model = validate(doc)
    assert doc["class_uid"] == 2004 and doc["type_uid"] == 200401
    info = doc["finding_info"]
    assert info["uid"] == record.id and info["analytic"]["uid"] == record.data["rule_id"] and info["analytic"]["type_id"] == 1
    assert model.finding_info.title == record.data["title"]
    assert doc["severity_id"] == ocsf.FINDING_SEVERITY[record.data["severity"]]


def test_corpus_validates_and_counts_match(corpus_loaded):
    loaded, findings = corpus_loaded
    docs = [ocsf.encode(r) for r in corpus_records(corpus_loaded)]
    assert len(docs) == loaded.table.num_rows + len(findings)
    assert sum(d["class_uid"] == 2004 for d in docs) == len(findings)
    # Validating every one of the ~136k corpus events through pydantic is slow; every distinct shape
    # (class, severity, set of keys) is validated instead, and each doc's base fields are checked.
    shapes = {}
    for doc in docs:
        assert doc["type_uid"] == doc["class_uid"] * 100 + doc["activity_id"]
        shapes.setdefault((doc["class_uid"], doc["severity_id"], _keys(doc)), doc)
    for doc in shapes.values():
        validate(doc)


def _keys(doc, prefix=""):
    keys = []
    for k, v in doc.items():
        if isinstance(v, dict) and k not in FREE_FORM:
            keys += _keys(v, f"{prefix}{k}.")
        else:
            keys.append(f"{prefix}{k}")
    return tuple(sorted(keys))


def test_hostile_messages_validate():
    for record in hostile_records():
        doc = ocsf.encode(record)
        validate(doc)
        if record.kind == "event":
            assert doc["message"] == record.data["message"] or doc["message"] == record.data["message"].strip()


def test_doctests():
    assert doctest.testmod(ocsf).failed == 0
