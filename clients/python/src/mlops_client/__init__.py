"""Python client for TracSeq MLOps experiment tracking.

    from mlops_client import MlopsClient

    client = MlopsClient("http://127.0.0.1:8000", api_key="tsk_...")
    with client.start_run(experiment="qc-model") as run:
        run.log_params({"estimator": "random_forest"})
        run.log_metric("val_auc", 0.91, step=1)
"""

from mlops_client.batching import DEFAULT_MAX_BUFFERED_METRICS
from mlops_client.client import MlopsClient
from mlops_client.errors import BatchRejectedError, MlopsApiError, MlopsConnectionError, MlopsError
from mlops_client.http import RetryPolicy
from mlops_client.run import ActiveRun

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MAX_BUFFERED_METRICS",
    "ActiveRun",
    "BatchRejectedError",
    "MlopsApiError",
    "MlopsClient",
    "MlopsConnectionError",
    "MlopsError",
    "RetryPolicy",
    "__version__",
]
