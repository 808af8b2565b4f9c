"""The demo-data generator: deterministic, realistic, and labels that depend on the features."""

import numpy as np
import pytest
from django.core.management import call_command
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import accuracy_score, roc_auc_score

from apps.datasets.generator import COLUMNS, SCENARIOS, generate_submissions


def test_same_seed_same_table_other_seed_other_table():
    a = generate_submissions(rows=300, seed=7)
    b = generate_submissions(rows=300, seed=7)
    c = generate_submissions(rows=300, seed=8)
    assert a.equals(b)
    assert not a.drop(columns="sample_id").equals(c.drop(columns="sample_id"))
    assert list(a.columns) == COLUMNS


def test_domain_shape_pass_rate_and_missing_values():
    frame = generate_submissions(rows=6000, seed=42)
    assert 0.75 <= frame["qc_pass"].mean() <= 0.85
    assert set(frame["qc_pass"].unique()) == {0, 1}
    assert frame["submitting_lab"].nunique() == 12
    assert set(frame["sample_type"]) == {"DNA", "RNA", "cfDNA", "FFPE_DNA", "tissue"}
    assert set(frame["analysis_type"]) <= {"WGS", "WES", "RNA-seq", "amplicon", "methylation"}
    # RIN only for RNA, DIN never for RNA.
    assert frame.loc[frame["sample_type"] != "RNA", "rin"].isna().all()
    assert frame.loc[frame["sample_type"] == "RNA", "rin"].notna().mean() > 0.9
    assert frame.loc[frame["sample_type"] == "RNA", "din"].isna().all()
    assert 0 < frame["extraction_kit"].isna().mean() < 0.05
    assert frame["sample_id"].is_unique
    assert (frame["turnaround_hours"] > 0).all()


def test_label_depends_on_features_and_drift_hurts_a_reference_model():
    numeric = ["concentration_ng_ul", "volume_ul", "a260_280", "a260_230", "rin", "din", "fragment_size_bp",
               "days_in_storage", "storage_temp_c", "freeze_thaw_cycles"]

    def matrix(frame):
        x = frame[numeric].copy()
        x["is_rna"] = (frame["sample_type"] == "RNA").astype(float)
        x["is_ffpe"] = (frame["sample_type"] == "FFPE_DNA").astype(float)
        return x

    reference = generate_submissions(rows=4000, seed=1)
    model = HistGradientBoostingClassifier(random_state=0).fit(matrix(reference), reference["qc_pass"])
    holdout = generate_submissions(rows=3000, seed=2)
    auc = roc_auc_score(holdout["qc_pass"], model.predict_proba(matrix(holdout))[:, 1])
    assert auc > 0.75, "the label must be learnable from the features"
    base_accuracy = accuracy_score(holdout["qc_pass"], model.predict(matrix(holdout)))
    for scenario in ("new_extraction_kit", "freezer_failure", "ffpe_shift"):
        drifted = generate_submissions(rows=3000, seed=2, scenario=scenario)
        assert drifted["qc_pass"].mean() < holdout["qc_pass"].mean() - 0.05, scenario
        accuracy = accuracy_score(drifted["qc_pass"], model.predict(matrix(drifted)))
        assert accuracy < base_accuracy - 0.02, scenario


def test_scenarios_move_the_documented_columns():
    reference = generate_submissions(rows=4000, seed=3)
    kit = generate_submissions(rows=4000, seed=3, scenario="new_extraction_kit")
    freezer = generate_submissions(rows=4000, seed=3, scenario="freezer_failure")
    ffpe = generate_submissions(rows=4000, seed=3, scenario="ffpe_shift")
    assert kit["a260_230"].mean() < reference["a260_230"].mean() - 0.2
    assert "XtractPure Rapid DNA" in set(kit["extraction_kit"].dropna())
    assert freezer["rin"].mean() < reference["rin"].mean() - 1.0
    assert (ffpe["sample_type"] == "FFPE_DNA").mean() > 2 * (reference["sample_type"] == "FFPE_DNA").mean()
    assert kit["submitted_at"].min() > reference["submitted_at"].max()


def test_turnaround_depends_on_priority_and_analysis():
    frame = generate_submissions(rows=5000, seed=4)
    by_priority = frame.groupby("priority")["turnaround_hours"].median()
    assert by_priority["stat"] < by_priority["urgent"] < by_priority["routine"]
    by_analysis = frame[frame["priority"] == "routine"].groupby("analysis_type")["turnaround_hours"].median()
    assert by_analysis["amplicon"] < by_analysis["WGS"]


def test_unknown_scenario_and_negative_rows_are_refused():
    with pytest.raises(ValueError, match="Unknown scenario"):
        generate_submissions(rows=10, seed=1, scenario="meteor")
    with pytest.raises(ValueError):
        generate_submissions(rows=-1, seed=1)
    assert len(generate_submissions(rows=0, seed=1)) == 0


@pytest.mark.parametrize("suffix", ["csv", "tsv", "parquet"])
def test_generate_lab_data_command_writes_each_format(tmp_path, suffix):
    import pandas as pd

    out = tmp_path / f"lab.{suffix}"
    call_command("generate_lab_data", "--rows", "200", "--seed", "5", "--scenario", "ffpe_shift", "--out", str(out))
    if suffix == "parquet":
        back = pd.read_parquet(out)
    else:
        back = pd.read_csv(out, sep="\t" if suffix == "tsv" else ",")
    expected = generate_submissions(rows=200, seed=5, scenario="ffpe_shift")
    assert list(back.columns) == COLUMNS
    assert np.allclose(back["a260_280"].fillna(-1), expected["a260_280"].fillna(-1))
    assert (back["qc_pass"].to_numpy() == expected["qc_pass"].to_numpy()).all()


def test_generate_lab_data_command_refuses_bad_arguments(tmp_path):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="scenario"):
        call_command("generate_lab_data", "--rows", "5", "--seed", "1", "--scenario", "nope",
                     "--out", str(tmp_path / "x.csv"))
    with pytest.raises(CommandError, match=r"\.csv"):
        call_command("generate_lab_data", "--rows", "5", "--seed", "1", "--out", str(tmp_path / "x.xlsx"))


def test_every_scenario_is_listed():
    assert set(SCENARIOS) == {"reference", "new_extraction_kit", "freezer_failure", "ffpe_shift"}
