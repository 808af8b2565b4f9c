"""Data drift core: per-column drift tests and the dataset verdict, with no Django.

Statistic values and the default choice of test follow Evidently 0.7.23
(checked against it in ``apps/monitoring/tests/test_drift_evidently.py`` with a
fixture made by ``bench/evidently_fixture.py``); the one deliberate
difference is the two-sample χ² test for categorical columns.
"""

from .columns import ColumnDrift, column_drift
from .dataset import CORRECTIONS, DatasetDrift, adjust_p_values, dataset_drift, frame_drift
from .errors import DriftInputError
from .methods import METHODS, Method, default_method, method_get
from .samples import CATEGORICAL, KINDS, NUMERIC, ColumnSample, column_sample

__all__ = [
    "CATEGORICAL",
    "CORRECTIONS",
    "KINDS",
    "METHODS",
    "NUMERIC",
    "ColumnDrift",
    "ColumnSample",
    "DatasetDrift",
    "DriftInputError",
    "Method",
    "adjust_p_values",
    "column_drift",
    "column_sample",
    "dataset_drift",
    "default_method",
    "frame_drift",
    "method_get",
]
