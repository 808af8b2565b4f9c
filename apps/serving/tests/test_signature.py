"""Signature validation (apps.serving.signature): each error names the
instance and the field."""

import pytest

from apps.serving.signature import CompiledSignature, InstanceError, SignatureError

SIGNATURE = {
    "inputs": [
        {"name": "sample_type", "type": "categorical", "nullable": False, "categories": ["DNA", "RNA"]},
        {"name": "extraction_kit", "type": "categorical", "nullable": True, "categories": ["A", "B"]},
        {"name": "concentration_ng_ul", "type": "float", "nullable": True},
        {"name": "freeze_thaw_cycles", "type": "integer", "nullable": False},
        {"name": "urgent", "type": "boolean", "nullable": False},
        {"name": "comment", "type": "text", "nullable": True},
        {"name": "received", "type": "datetime", "nullable": True},
    ],
    "target": "qc_pass",
    "task": "classification",
}
GOOD = {"sample_type": "DNA", "extraction_kit": "A", "concentration_ng_ul": 12.5, "freeze_thaw_cycles": 1,
        "urgent": False, "comment": "ok", "received": "2026-01-05T08:00:00", "sample_id": "ignored"}


def _error(instances) -> InstanceError:
    with pytest.raises(InstanceError) as caught:
        CompiledSignature(SIGNATURE).columns(instances)
    return caught.value


def test_valid_instances_become_columns():
    other = {**GOOD, "sample_type": "RNA", "extraction_kit": None, "concentration_ng_ul": 3,
             "freeze_thaw_cycles": 2.0}
    del other["comment"]
    columns = CompiledSignature(SIGNATURE).columns([GOOD, other])
    assert columns["sample_type"] == ["DNA", "RNA"]
    assert columns["extraction_kit"] == ["A", None]
    assert columns["concentration_ng_ul"] == [12.5, 3.0]
    assert columns["freeze_thaw_cycles"] == [1, 2]
    assert columns["comment"] == ["ok", None]  # a nullable field may be left out
    assert "sample_id" not in columns


@pytest.mark.parametrize(("change", "field", "code"), [
    ({"sample_type": None}, "sample_type", "null_not_allowed"),
    ({"sample_type": "cfDNA"}, "sample_type", "unknown_category"),
    ({"sample_type": 3}, "sample_type", "wrong_type"),
    ({"concentration_ng_ul": "12.5"}, "concentration_ng_ul", "wrong_type"),
    ({"concentration_ng_ul": True}, "concentration_ng_ul", "wrong_type"),
    ({"freeze_thaw_cycles": 1.5}, "freeze_thaw_cycles", "wrong_type"),
    ({"urgent": 1}, "urgent", "wrong_type"),
    ({"received": "yesterday"}, "received", "wrong_type"),
    ({"comment": ["a"]}, "comment", "wrong_type"),
])
def test_each_error_names_instance_and_field(change, field, code):
    error = _error([GOOD, GOOD, {**GOOD, **change}])
    assert (error.index, error.field, error.code) == (2, field, code)
    assert "instances[2]" in error.message and field in error.message


def test_missing_required_field():
    instance = dict(GOOD)
    del instance["freeze_thaw_cycles"]
    error = _error([instance])
    assert (error.index, error.field, error.code) == (0, "freeze_thaw_cycles", "missing_field")


def test_instance_that_is_not_an_object():
    error = _error([GOOD, ["DNA", 1]])
    assert (error.index, error.field, error.code) == (1, None, "invalid_instance")


def test_unknown_category_lists_the_known_ones():
    error = _error([{**GOOD, "sample_type": "plasma"}])
    assert "DNA, RNA" in error.message


def test_unusable_signatures_are_refused():
    with pytest.raises(SignatureError):
        CompiledSignature({"inputs": []})
    with pytest.raises(SignatureError):
        CompiledSignature({"inputs": [{"name": "x", "type": "complex"}]})
