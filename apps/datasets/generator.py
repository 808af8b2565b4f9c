"""Deterministic generator of sequencing-lab sample submissions (the demo domain).

Pure numpy/pandas, no Django: the same ``(rows, seed, scenario)`` always gives
the same table, on any machine. The columns are ``COLUMNS`` below, described
in docs/datasets.md ("Demo data").

How the labels are made (so that models have something real to learn, and
drift really hurts them):

* ``qc_pass`` (0/1) is drawn from a logistic model of the library-prep
  drivers: total DNA/RNA mass relative to what the analysis needs (log10
  scale), purity (A260/280 distance from the ideal for the nucleic acid,
  A260/230), integrity (RIN for RNA, DIN otherwise), storage time above
  -70 °C and freeze-thaw cycles, plus logistic noise. Two effects are
  thresholds rather than slopes — contaminated eluates (A260/230 below 1.5)
  and degraded RNA (RIN below 5) fail almost regardless of the rest — which
  the reference data rarely shows and the drift scenarios show often, so a
  model trained on the reference extrapolates badly into them.
* ``turnaround_hours`` depends on the analysis type, the priority, the
  weekday of submission and on a failed QC (re-extraction adds a day or two),
  with gamma-distributed noise.

Scenarios:

* ``reference`` — the lab as usual (≈80 % pass).
* ``new_extraction_kit`` — most DNA samples move to a new kit whose eluates
  carry more guanidine (A260/230 drops by ~0.45) and an elution buffer that
  inhibits enzymatic fragmentation — an effect no reference-era measurement
  shows, so models trained before the switch are over-confident.
* ``freezer_failure`` — one -80 °C freezer warmed up: part of the samples were
  stored at about -20 °C, RIN and DIN fall, freeze-thaw cycles rise.
* ``ffpe_shift`` — a pathology project sends many more FFPE samples (low DIN,
  short fragments, little DNA).

Drift scenarios are dated after the reference period, as a later upload would be.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SCENARIOS = ("reference", "new_extraction_kit", "freezer_failure", "ffpe_shift")

COLUMNS = [
    "sample_id", "submitted_at", "submitting_lab", "sample_type", "extraction_kit", "sequencing_platform",
    "analysis_type", "concentration_ng_ul", "volume_ul", "a260_280", "a260_230", "rin", "din",
    "fragment_size_bp", "days_in_storage", "storage_temp_c", "freeze_thaw_cycles", "priority",
    "qc_pass", "turnaround_hours",
]
TARGETS = ("qc_pass", "turnaround_hours")

LABS = [
    "Oslo Genomics Core", "Bergen Clinical Genetics", "Trondheim Pathology", "Uppsala Biobank",
    "Stockholm Cancer Center", "Copenhagen Rare Disease Unit", "Aarhus Oncology", "Helsinki Neurogenetics",
    "Tromso Microbiome Lab", "Gothenburg Cardiology", "Reykjavik Population Study", "Turku Pediatrics",
]
SAMPLE_TYPES = ["DNA", "RNA", "cfDNA", "FFPE_DNA", "tissue"]
KITS = {
    "DNA": ["QIAamp DNA Mini", "MagMAX DNA Multi-Sample"],
    "RNA": ["RNeasy Mini", "MagMAX mirVana Total RNA"],
    "cfDNA": ["QIAamp Circulating NA"],
    "FFPE_DNA": ["GeneRead DNA FFPE", "Maxwell RSC FFPE Plus"],
    "tissue": ["DNeasy Blood & Tissue", "MagMAX DNA Multi-Sample"],
}
NEW_KIT = "XtractPure Rapid DNA"
PLATFORMS = ["NovaSeq X", "NovaSeq 6000", "NextSeq 2000", "MiSeq", "PromethION"]
ANALYSES = ["WGS", "WES", "RNA-seq", "amplicon", "methylation"]
PRIORITIES = ["routine", "urgent", "stat"]

# Mass (ng) each analysis needs for a standard library prep.
REQUIRED_NG = {"WGS": 500.0, "WES": 200.0, "RNA-seq": 300.0, "amplicon": 20.0, "methylation": 400.0}
BASE_TURNAROUND_H = {"WGS": 120.0, "WES": 96.0, "RNA-seq": 100.0, "amplicon": 40.0, "methylation": 140.0}
PRIORITY_FACTOR = {"routine": 1.0, "urgent": 0.7, "stat": 0.45}

_REFERENCE_START = pd.Timestamp("2025-01-06 08:00:00")
_DRIFT_START = pd.Timestamp("2026-01-05 08:00:00")

# Logistic-model intercept, calibrated so the reference pass rate is ≈80 %.
_QC_INTERCEPT = 1.8


def _pick(rng: np.random.Generator, options: list[str], probabilities, size: int) -> np.ndarray:
    p = np.asarray(probabilities, dtype=float)
    return np.asarray(options, dtype=object)[rng.choice(len(options), size=size, p=p / p.sum())]


def generate_submissions(*, rows: int, seed: int, scenario: str = "reference") -> pd.DataFrame:
    """Return ``rows`` sample submissions for ``scenario``, deterministic for ``seed``.

    Columns (in this order): see ``COLUMNS``. ``rin`` is only set for RNA,
    ``din`` only for DNA-like samples; a few per cent of the measurements and
    of ``extraction_kit`` are missing, as on real submission forms.
    ``qc_pass`` is 0/1 (int64), ``turnaround_hours`` a float.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"Unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}.")
    if rows < 0:
        raise ValueError("rows must be >= 0")
    # The scenario is part of the stream so two scenarios with one seed differ
    # everywhere, not only in the drifted columns.
    rng = np.random.default_rng([seed, SCENARIOS.index(scenario)])
    n = rows

    # Who sends what.
    lab_weights = 1.0 / np.arange(1, len(LABS) + 1) ** 0.6
    lab = _pick(rng, LABS, lab_weights, n)
    type_p = {"DNA": 0.40, "RNA": 0.22, "cfDNA": 0.12, "FFPE_DNA": 0.12, "tissue": 0.14}
    if scenario == "ffpe_shift":
        type_p = {"DNA": 0.22, "RNA": 0.14, "cfDNA": 0.08, "FFPE_DNA": 0.46, "tissue": 0.10}
    sample_type = _pick(rng, SAMPLE_TYPES, [type_p[t] for t in SAMPLE_TYPES], n)
    is_rna = sample_type == "RNA"
    is_ffpe = sample_type == "FFPE_DNA"
    is_cf = sample_type == "cfDNA"

    kit = np.empty(n, dtype=object)
    for stype, kits in KITS.items():
        mask = sample_type == stype
        kit[mask] = _pick(rng, kits, [0.65, 0.35][: len(kits)], int(mask.sum()))
    new_kit = np.zeros(n, dtype=bool)
    if scenario == "new_extraction_kit":
        new_kit = np.isin(sample_type, ["DNA", "tissue", "FFPE_DNA"]) & (rng.random(n) < 0.75)
        kit[new_kit] = NEW_KIT

    analysis = np.empty(n, dtype=object)
    analysis[is_rna] = _pick(rng, ANALYSES, [0.02, 0.0, 0.93, 0.05, 0.0], int(is_rna.sum()))
    analysis[is_cf] = _pick(rng, ANALYSES, [0.35, 0.05, 0.0, 0.45, 0.15], int(is_cf.sum()))
    dna_like = ~(is_rna | is_cf)
    analysis[dna_like] = _pick(rng, ANALYSES, [0.34, 0.30, 0.0, 0.21, 0.15], int(dna_like.sum()))
    platform = np.where(
        analysis == "amplicon",
        _pick(rng, PLATFORMS, [0.05, 0.05, 0.35, 0.55, 0.0], n),
        _pick(rng, PLATFORMS, [0.45, 0.30, 0.17, 0.0, 0.08], n),
    )
    priority = _pick(rng, PRIORITIES, [0.76, 0.19, 0.05], n)

    # When: weekdays, office hours; the drift scenarios come after the reference year.
    start = _REFERENCE_START if scenario == "reference" else _DRIFT_START
    span_days = 360 if scenario == "reference" else 90
    day = np.sort(rng.integers(0, span_days, n))
    day = day + np.where((day + start.day_of_week) % 7 >= 5, 2, 0)  # push weekend submissions to Monday-ish
    minutes = rng.integers(0, 9 * 60, n)
    submitted_at = start + pd.to_timedelta(day, unit="D") + pd.to_timedelta(minutes, unit="m")
    weekday = np.asarray(submitted_at.day_of_week)

    # Quantity.
    conc_median = np.select([is_rna, is_cf, is_ffpe, sample_type == "tissue"], [85.0, 1.8, 22.0, 45.0], 60.0)
    concentration = np.exp(np.log(conc_median) + rng.normal(0, 0.75, n))
    volume = np.clip(np.round(rng.normal(45, 15, n) / 5) * 5, 10, 120)
    volume = np.where(is_cf, np.clip(np.round(rng.normal(60, 15, n) / 5) * 5, 20, 120), volume)

    # Purity.
    ideal_280 = np.where(is_rna, 2.05, 1.85)
    a260_280 = ideal_280 + rng.normal(0, 0.07, n) - np.where(rng.random(n) < 0.06, rng.uniform(0.1, 0.35, n), 0)
    a260_230 = 2.05 + rng.normal(0, 0.18, n) - np.where(rng.random(n) < 0.05, rng.uniform(0.3, 0.9, n), 0)
    a260_230 = a260_230 - np.where(new_kit, 0.45 + rng.normal(0, 0.15, n), 0.0)
    a260_230 = np.where(is_ffpe, a260_230 - 0.1, a260_230)

    # Storage history.
    days_in_storage = np.floor(rng.exponential(28, n)).astype(np.int64)
    storage_temp = _pick(rng, ["-80", "-20", "4"], [0.80, 0.17, 0.03], n).astype(float)
    storage_temp = np.where(is_rna, np.where(rng.random(n) < 0.95, -80.0, -20.0), storage_temp)
    freeze_thaw = rng.poisson(0.7, n)
    warmed = np.zeros(n, dtype=bool)
    if scenario == "freezer_failure":
        warmed = (storage_temp == -80.0) & (rng.random(n) < 0.55)
        storage_temp = np.where(warmed, -20.0 + rng.normal(0, 3.0, n).round(), storage_temp)
        freeze_thaw = freeze_thaw + warmed.astype(int) + rng.poisson(0.5, n)
    warm_days = np.where(storage_temp > -70, days_in_storage, 0)

    # Integrity.
    rin = np.clip(8.2 - 0.02 * warm_days - 0.35 * freeze_thaw + rng.normal(0, 0.9, n), 1.0, 10.0)
    rin = np.where(warmed, rin - rng.uniform(2.0, 4.0, n), rin)
    rin = np.clip(rin, 1.0, 10.0).round(1)
    din_base = np.select([is_ffpe, is_cf, sample_type == "tissue"], [3.6, 7.0, 6.8], 7.8)
    din = np.clip(din_base - 0.012 * warm_days - 0.25 * freeze_thaw + rng.normal(0, 0.7, n), 1.0, 10.0)
    din = np.where(warmed, din - rng.uniform(0.8, 2.0, n), din)
    din = np.clip(din, 1.0, 10.0).round(1)

    fragment = np.select(
        [is_cf, is_ffpe, is_rna, sample_type == "tissue"],
        [rng.normal(168, 12, n), np.exp(rng.normal(np.log(420), 0.35, n)),
         np.exp(rng.normal(np.log(1600), 0.4, n)), np.exp(rng.normal(np.log(9000), 0.45, n))],
        np.exp(rng.normal(np.log(14000), 0.4, n)),
    )
    fragment = np.where(warmed & ~is_cf, fragment * 0.6, fragment)
    fragment = np.maximum(np.round(fragment), 50).astype(np.int64)

    # The label: library-prep QC.
    required = np.vectorize(REQUIRED_NG.__getitem__, otypes=[float])(analysis) if n else np.zeros(0)
    mass_ratio = np.log10(np.maximum(concentration * volume, 1e-3) / required)
    integrity = np.where(is_rna, rin, din)
    logit = (
        _QC_INTERCEPT
        + 1.5 * np.clip(mass_ratio, -2.0, 1.0)
        - 9.0 * np.abs(a260_280 - ideal_280)
        + 1.0 * (a260_230 - 2.0)
        + 0.45 * (integrity - 6.5)
        - 0.012 * warm_days
        - 0.40 * freeze_thaw
        - 4.0 * (a260_230 < 1.5)
        - 3.0 * (is_rna & (rin < 5.0))
        - 0.6 * (priority == "stat")  # rushed preps fail a little more often
        - 1.6 * new_kit  # carry-over in the new kit's elution buffer inhibits enzymatic fragmentation
    )
    qc_pass = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)

    base_tat = np.vectorize(BASE_TURNAROUND_H.__getitem__, otypes=[float])(analysis) if n else np.zeros(0)
    factor = np.vectorize(PRIORITY_FACTOR.__getitem__, otypes=[float])(priority) if n else np.zeros(0)
    turnaround = (
        base_tat * factor
        + np.where(weekday >= 3, 18.0, 0.0)  # submitted late in the week: waits over the weekend
        + np.where(qc_pass == 0, rng.uniform(24, 60, n), 0.0)
        + rng.gamma(2.0, 6.0, n)
    ).round(1)

    # Missing values as they happen on submission forms.
    def holes(values: np.ndarray, share: float) -> np.ndarray:
        values = values.astype(float)
        values[rng.random(n) < share] = np.nan
        return values

    concentration = holes(concentration.round(2), 0.01)
    volume = holes(volume, 0.015)
    a260_280 = holes(a260_280.round(2), 0.03)
    a260_230 = holes(a260_230.round(2), 0.04)
    rin = np.where(is_rna, holes(rin, 0.03), np.nan)
    din = np.where(is_rna, np.nan, holes(din, 0.06))
    kit[rng.random(n) < 0.02] = None

    frame = pd.DataFrame({
        "sample_id": [f"S{seed % 100000:05d}-{SCENARIOS.index(scenario)}{i:07d}" for i in range(n)],
        "submitted_at": submitted_at,
        "submitting_lab": lab,
        "sample_type": sample_type,
        "extraction_kit": kit,
        "sequencing_platform": platform,
        "analysis_type": analysis,
        "concentration_ng_ul": concentration,
        "volume_ul": volume,
        "a260_280": a260_280,
        "a260_230": a260_230,
        "rin": rin,
        "din": din,
        "fragment_size_bp": fragment,
        "days_in_storage": days_in_storage,
        "storage_temp_c": storage_temp,
        "freeze_thaw_cycles": freeze_thaw.astype(np.int64),
        "priority": priority,
        "qc_pass": qc_pass,
        "turnaround_hours": turnaround,
    })
    for column in ("submitting_lab", "sample_type", "extraction_kit", "sequencing_platform", "analysis_type",
                   "priority", "sample_id"):
        frame[column] = frame[column].astype("str")
    return frame[COLUMNS]


def write_frame(frame: pd.DataFrame, path: str) -> str:
    """Write ``frame`` as CSV, TSV or Parquet, chosen by the file extension.
    Returns the format written."""
    lower = str(path).lower()
    if lower.endswith(".parquet"):
        frame.to_parquet(path, index=False)
        return "parquet"
    if lower.endswith((".tsv", ".tab")):
        frame.to_csv(path, index=False, sep="\t")
        return "tsv"
    if lower.endswith(".csv"):
        frame.to_csv(path, index=False)
        return "csv"
    raise ValueError("The output file must end in .csv, .tsv or .parquet")
