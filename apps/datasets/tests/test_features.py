"""Feature specs compile to a ColumnTransformer that fits the demo data,
agrees with its signature, and converts to ONNX with the same answers."""

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from apps.datasets import fileformats
from apps.datasets.features import (
    FeatureSpecError,
    build_preprocessor,
    default_feature_spec,
    feature_columns,
    input_signature,
    onnx_initial_types,
    onnx_inputs,
    validate_feature_spec,
)


@pytest.fixture(scope="module")
def schema(reference_profile):
    return reference_profile[1].schema


@pytest.fixture(scope="module")
def frame(reference_csv, reference_profile):
    sniffed, result = reference_profile
    types = {c["name"]: c["type"] for c in result.schema["columns"]}
    with open(reference_csv, "rb") as handle:
        return fileformats.read_frame(handle, sniffed=sniffed, column_types=types)


def demo_spec(schema):
    spec = default_feature_spec(schema=schema, target="qc_pass")
    spec["columns"]["turnaround_hours"] = {"kind": "drop"}  # known only after QC: a leak
    return spec


def test_default_spec_drops_identifiers_timestamps_and_the_target(schema):
    spec = default_feature_spec(schema=schema, target="qc_pass")
    kinds = {name: options["kind"] for name, options in spec["columns"].items()}
    assert "qc_pass" not in kinds
    assert kinds["sample_id"] == "drop"
    assert kinds["submitted_at"] == "drop"
    assert kinds["sample_type"] == "categorical"
    assert kinds["a260_280"] == "numeric"
    assert kinds["freeze_thaw_cycles"] == "numeric"
    columns = feature_columns(spec=spec, schema=schema, target="qc_pass")
    assert "sample_id" not in columns and "qc_pass" not in columns
    order = [c["name"] for c in schema["columns"]]
    assert columns == sorted(columns, key=order.index), "inputs keep the schema order"


def test_preprocessor_fits_and_transforms_the_demo_data(schema, frame):
    spec = demo_spec(schema)
    columns = feature_columns(spec=spec, schema=schema, target="qc_pass")
    pre = build_preprocessor(spec=spec, schema=schema, target="qc_pass")
    assert isinstance(pre, ColumnTransformer)
    out = pre.fit_transform(frame[columns])
    assert out.shape[0] == len(frame)
    assert np.isfinite(out).all(), "missing numbers are imputed"
    n_categories = sum(len(i.get("categories", [])) for i in
                       input_signature(spec=spec, schema=schema, target="qc_pass", task="classification")["inputs"])
    n_numeric = sum(1 for c in columns if c not in {"submitting_lab", "sample_type", "extraction_kit",
                                                     "sequencing_platform", "analysis_type", "priority"})
    assert out.shape[1] == n_numeric + n_categories
    model = Pipeline([("preprocess", pre), ("model", LogisticRegression(max_iter=2000))])
    model.fit(frame[columns], frame["qc_pass"])
    assert model.score(frame[columns], frame["qc_pass"]) > 0.8


def test_missing_and_unknown_categories_encode_as_all_zero(schema, frame):
    spec = demo_spec(schema)
    columns = feature_columns(spec=spec, schema=schema, target="qc_pass")
    pre = build_preprocessor(spec=spec, schema=schema, target="qc_pass").fit(frame[columns])
    rows = frame[columns].head(3).copy()
    rows["extraction_kit"] = pd.Series([np.nan, "", "Brand-new kit"], dtype=object)
    names = list(pre.get_feature_names_out())
    kit = [i for i, name in enumerate(names) if name.startswith("categorical__extraction_kit_")]
    encoded = pre.transform(rows)[:, kit]
    assert (encoded == 0).all(), "NaN, '' and an unseen kit are the same all-zero level"


def test_spec_options_change_the_transformer(schema, frame):
    spec = demo_spec(schema)
    spec["numeric"] = {"imputation": "constant", "fill_value": -1, "scaling": "none"}
    spec["columns"]["rin"] = {"kind": "numeric", "imputation": "mean", "scaling": "minmax"}
    spec["columns"]["submitting_lab"] = {"kind": "categorical", "max_categories": 3}
    spec["columns"]["priority"] = {"kind": "drop"}
    columns = feature_columns(spec=spec, schema=schema, target="qc_pass")
    assert "priority" not in columns
    pre = build_preprocessor(spec=spec, schema=schema, target="qc_pass").fit(frame[columns])
    names = list(pre.get_feature_names_out())
    assert len([n for n in names if "submitting_lab_" in n]) == 3
    out = pd.DataFrame(pre.transform(frame[columns]), columns=names)
    rin = next(n for n in names if n.endswith("__rin"))
    assert out[rin].min() >= 0 and out[rin].max() <= 1
    din = next(n for n in names if n.endswith("__din"))
    assert (out[din] == -1).sum() == frame["din"].isna().sum(), "constant fill with the given value, unscaled"


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"numeric": {"scaling": "log"}}, "numeric.scaling"),
        ({"categorical": {"imputation": "most_frequent"}}, "categorical.imputation"),
        ({"columns": {"sample_type": {"kind": "numeric"}}}, "columns.sample_type.kind"),
        ({"columns": {"a260_280": {"kind": "categorical"}}}, "columns.a260_280.kind"),
        ({"columns": {"no_such": {"kind": "numeric"}}}, "columns.no_such"),
        ({"columns": {"qc_pass": {"kind": "numeric"}}}, "columns.qc_pass"),
        ({"colums": {}}, "colums"),
        ({"numeric": {"imputation": "constant", "fill_value": "x"}}, "numeric.fill_value"),
    ],
)
def test_invalid_specs_are_refused_with_the_place(schema, change, where):
    spec = {**demo_spec(schema), **change}
    with pytest.raises(FeatureSpecError) as info:
        build_preprocessor(spec=spec, schema=schema, target="qc_pass")
    assert where in info.value.errors


def test_a_spec_that_drops_everything_is_refused(schema):
    spec = {"columns": {c["name"]: {"kind": "drop"} for c in schema["columns"] if c["name"] != "qc_pass"}}
    with pytest.raises(FeatureSpecError, match="no input"):
        feature_columns(spec=spec, schema=schema, target="qc_pass")


def test_empty_spec_means_the_defaults(schema):
    assert feature_columns(spec={}, schema=schema, target="qc_pass") == feature_columns(
        spec=default_feature_spec(schema=schema, target="qc_pass"), schema=schema, target="qc_pass")
    assert validate_feature_spec(spec={})["version"] == 1


def test_input_signature_describes_the_inputs(schema):
    spec = demo_spec(schema)
    signature = input_signature(spec=spec, schema=schema, target="qc_pass", task="classification")
    assert signature["target"] == "qc_pass" and signature["task"] == "classification"
    assert [i["name"] for i in signature["inputs"]] == feature_columns(spec=spec, schema=schema, target="qc_pass")
    by_name = {i["name"]: i for i in signature["inputs"]}
    assert by_name["sample_type"] == {"name": "sample_type", "type": "categorical", "nullable": False,
                                      "categories": ["DNA", "FFPE_DNA", "RNA", "cfDNA", "tissue"]}
    assert by_name["rin"]["type"] == "float" and by_name["rin"]["nullable"] is True
    assert by_name["freeze_thaw_cycles"]["type"] == "integer"
    assert "categories" not in by_name["a260_280"]
    assert by_name["extraction_kit"]["nullable"] is True


def test_the_compiled_pipeline_converts_to_onnx_and_answers_the_same(schema, frame):
    onnxruntime = pytest.importorskip("onnxruntime")
    from skl2onnx import convert_sklearn

    spec = demo_spec(schema)
    columns = feature_columns(spec=spec, schema=schema, target="qc_pass")
    model = Pipeline([("preprocess", build_preprocessor(spec=spec, schema=schema, target="qc_pass")),
                      ("model", LogisticRegression(max_iter=2000))]).fit(frame[columns], frame["qc_pass"])
    onx = convert_sklearn(model, initial_types=onnx_initial_types(spec=spec, schema=schema, target="qc_pass"),
                          options={id(model.steps[-1][1]): {"zipmap": False}})
    session = onnxruntime.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    rows = frame[columns].head(400).copy()
    rows.loc[rows.index[:5], "extraction_kit"] = np.nan  # missing categories travel as ""
    feed = onnx_inputs(frame=rows, spec=spec, schema=schema, target="qc_pass")
    assert feed["extraction_kit"][0, 0] == ""
    _, probabilities = session.run(None, feed)
    expected = model.predict_proba(rows)
    assert np.abs(probabilities - expected).max() < 1e-4
