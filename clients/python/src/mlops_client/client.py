"""``MlopsClient``: the entry point for tracking runs from Python."""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import requests

from mlops_client.batching import (
    DEFAULT_MAX_BUFFERED_METRICS,
    MAX_METRICS_PER_BATCH,
    MAX_PARAMS_PER_BATCH,
    MAX_TAGS_PER_BATCH,
)
from mlops_client.errors import MlopsApiError
from mlops_client.http import HttpTransport, RetryPolicy
from mlops_client.run import ActiveRun

SEARCH_PAGE_SIZE = 500
DOWNLOAD_CHUNK = 1024 * 1024


class MlopsClient:
    """A connection to a TracSeq MLOps server.

    ``url`` is the server's base address (``http://host:8000``); it and the
    API key default to the ``MLOPS_URL`` and ``MLOPS_API_KEY`` environment
    variables. Authenticate with ``api_key`` (``Authorization: Api-Key``) or a
    JWT ``token`` (``Authorization: Bearer``).

    Every call retries connection errors, 5xx and 429 with exponential backoff
    (see :class:`~mlops_client.http.RetryPolicy`) and raises
    :class:`~mlops_client.errors.MlopsApiError` for any other 4xx. Pass
    ``session`` to supply your own ``requests.Session`` (proxies, CA bundle,
    instrumentation). One client may be shared by several threads."""

    def __init__(self, url: str | None = None, *, api_key: str | None = None, token: str | None = None,
                 timeout: float = 30.0, retry: RetryPolicy | None = None, session: requests.Session | None = None,
                 flush_interval: float = 1.0, max_buffered_metrics: int = DEFAULT_MAX_BUFFERED_METRICS):
        url = url or os.environ.get("MLOPS_URL")
        if not url:
            raise ValueError("Give the server's address (MlopsClient('http://host:8000', ...)) or set MLOPS_URL.")
        if api_key is None and token is None:
            api_key = os.environ.get("MLOPS_API_KEY") or None
        self._http = HttpTransport(url, api_key=api_key, token=token, timeout=timeout, retry=retry, session=session)
        self.flush_interval = flush_interval
        self.max_buffered_metrics = max_buffered_metrics

    @property
    def url(self) -> str:
        return self._http.base_url

    def close(self) -> None:
        """Release pooled connections."""
        self._http.session.close()

    def __enter__(self) -> MlopsClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- experiments ----------------------------------------------------------------

    def get_experiment_by_name(self, name: str) -> dict[str, Any] | None:
        """The experiment with exactly this name, or None."""
        page = self._http.json("GET", "experiments/", params={"name": name})
        for experiment in page.get("results", []):
            if experiment.get("name") == name:
                return experiment
        return None

    def get_experiment(self, experiment_id: int) -> dict[str, Any]:
        return self._http.json("GET", f"experiments/{experiment_id}/")

    def create_experiment(self, name: str, *, description: str = "",
                          tags: Mapping[str, str] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "description": description}
        if tags:
            body["tags"] = dict(tags)
        return self._http.json("POST", "experiments/", json=body)

    def get_or_create_experiment(self, name: str, *, description: str = "",
                                 tags: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Find the experiment by name, creating it if it does not exist yet."""
        found = self.get_experiment_by_name(name)
        if found is not None:
            return found
        try:
            return self.create_experiment(name, description=description, tags=tags)
        except MlopsApiError as exc:
            # Another process created it between our lookup and our create.
            if exc.status in (400, 409):
                found = self.get_experiment_by_name(name)
                if found is not None:
                    return found
            raise

    # --- runs -----------------------------------------------------------------------

    def create_run(self, experiment_id: int, *, name: str | None = None, parent_run_id: int | None = None,
                   dataset_version_id: int | None = None, source_version: str | None = None,
                   tags: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Create a run (status ``running``) and return it; nothing is buffered."""
        body: dict[str, Any] = {"experiment_id": experiment_id}
        optional = {"name": name, "parent_run_id": parent_run_id, "dataset_version_id": dataset_version_id,
                    "source_version": source_version}
        body.update({key: value for key, value in optional.items() if value is not None})
        if tags:
            body["tags"] = {key: "" if value is None else str(value) for key, value in tags.items()}
        return self._http.json("POST", "runs/", json=body)

    def start_run(self, experiment: str | None = None, *, experiment_id: int | None = None, name: str | None = None,
                  tags: Mapping[str, Any] | None = None, dataset_version_id: int | None = None,
                  parent_run_id: int | None = None, source_version: str | None = None) -> ActiveRun:
        """Create a run in ``experiment`` (by name, created if missing) or in
        ``experiment_id``, and return it as a context manager::

            with client.start_run(experiment="qc-model") as run:
                run.log_params({"estimator": "random_forest"})
                run.log_metric("val_auc", 0.91, step=1)
        """
        if (experiment is None) == (experiment_id is None):
            raise ValueError("Give exactly one of experiment (a name) or experiment_id.")
        if experiment_id is None:
            experiment_id = self.get_or_create_experiment(experiment)["id"]
        info = self.create_run(experiment_id, name=name, parent_run_id=parent_run_id,
                               dataset_version_id=dataset_version_id, source_version=source_version, tags=tags)
        return ActiveRun(self, info, flush_interval=self.flush_interval,
                         max_buffered_metrics=self.max_buffered_metrics)

    def get_run(self, run_id: int) -> dict[str, Any]:
        return self._http.json("GET", f"runs/{run_id}/")

    def finish_run(self, run_id: int, *, status: str = "finished", reason: str = "") -> dict[str, Any]:
        """Mark a run ``finished``, ``failed`` or ``killed``."""
        body: dict[str, Any] = {"status": status}
        if reason:
            body["reason"] = reason
        return self._http.json("POST", f"runs/{run_id}/finish/", json=body)

    def log_batch(self, run_id: int, *, metrics: Iterable[Mapping[str, Any]] = (),
                  params: Iterable[Mapping[str, Any]] = (), tags: Iterable[Mapping[str, Any]] = ()) -> dict[str, int]:
        """Send items now, without buffering, split into calls that respect
        the server's limits (1000 metrics, 100 params, 100 tags). Each call is
        all-or-nothing on the server; returns the counts stored."""
        metrics, params, tags = list(metrics), list(params), list(tags)
        totals = {"metrics": 0, "params": 0, "tags": 0}
        calls = max(1, -(-len(metrics) // MAX_METRICS_PER_BATCH), -(-len(params) // MAX_PARAMS_PER_BATCH),
                    -(-len(tags) // MAX_TAGS_PER_BATCH))
        for index in range(calls):
            body = {
                kind: [dict(item) for item in items[index * limit:(index + 1) * limit]]
                for kind, items, limit in (("metrics", metrics, MAX_METRICS_PER_BATCH),
                                           ("params", params, MAX_PARAMS_PER_BATCH),
                                           ("tags", tags, MAX_TAGS_PER_BATCH))
            }
            answer = self._http.json("POST", f"runs/{run_id}/log-batch/", json=body) or {}
            for kind, items in body.items():
                stored = answer.get(kind, len(items))
                totals[kind] += stored if isinstance(stored, int) else len(items)
        return totals

    # --- search and history ----------------------------------------------------------

    def iter_runs(self, experiment_ids: int | Sequence[int], *, filter: str = "",
                  order_by: str | Sequence[str] | None = None, max_results: int | None = None,
                  page_size: int = SEARCH_PAGE_SIZE) -> Iterator[dict[str, Any]]:
        """Yield matching runs across as many pages as needed (lazily).

        ``filter`` uses the server's expression language, e.g.
        ``metrics.val_auc > 0.8 and (params.estimator = 'rf' or tags.stage in ('a', 'b'))``;
        ``order_by`` takes entries such as ``"metrics.val_auc DESC"``.
        ``max_results=None`` yields every match."""
        ids = [experiment_ids] if isinstance(experiment_ids, (int, str)) else list(experiment_ids)
        orders = [order_by] if isinstance(order_by, str) else list(order_by or [])
        yielded = 0
        token: str | None = None
        while max_results is None or yielded < max_results:
            want = page_size if max_results is None else min(page_size, max_results - yielded)
            body: dict[str, Any] = {"experiment_ids": ids, "filter": filter, "order_by": orders, "max_results": want}
            if token:
                body["page_token"] = token
            page = self._http.json("POST", "runs/search/", json=body)
            runs = page.get("runs", [])
            for run in runs[:want]:
                yield run
                yielded += 1
            token = page.get("next_page_token")
            if not token or not runs:
                return

    def search_runs(self, experiment_ids: int | Sequence[int], *, filter: str = "",
                    order_by: str | Sequence[str] | None = None, max_results: int | None = 1000,
                    page_size: int = SEARCH_PAGE_SIZE) -> list[dict[str, Any]]:
        """Matching runs as a list, following the server's pages until
        ``max_results`` runs (None: all of them). See :meth:`iter_runs`."""
        return list(self.iter_runs(experiment_ids, filter=filter, order_by=order_by, max_results=max_results,
                                   page_size=page_size))

    def get_metric_history(self, run_id: int, key: str, *, max_points: int | None = None) -> list[dict[str, Any]]:
        """Every point of a metric (``step``, ``value``, ``timestamp``), or a
        shape-preserving downsample of at most ``max_points`` points."""
        params = {"max_points": max_points} if max_points is not None else None
        answer = self._http.json("GET", f"runs/{run_id}/metrics/{requests.utils.quote(key, safe='')}/history/",
                                 params=params)
        if isinstance(answer, dict):
            for field in ("points", "history", "metrics", "results"):
                if isinstance(answer.get(field), list):
                    return answer[field]
        return answer

    # --- artifacts ---------------------------------------------------------------------

    def log_artifact(self, run_id: int, local_path: str | os.PathLike,
                     artifact_path: str | None = None) -> dict[str, Any]:
        """Upload a file to a run as ``<artifact_path>/<file name>``."""
        local = Path(local_path)
        if not local.is_file():
            raise FileNotFoundError(f"No such file to upload: {local}")
        path = f"{artifact_path.strip('/')}/{local.name}" if artifact_path else local.name
        content_type = mimetypes.guess_type(local.name)[0] or "application/octet-stream"
        return self._http.json(
            "POST", f"runs/{run_id}/artifacts/", data={"path": path},
            files=lambda: {"file": (local.name, local.open("rb"), content_type)},
        )

    def list_artifacts(self, run_id: int) -> list[dict[str, Any]]:
        answer = self._http.json("GET", f"runs/{run_id}/artifacts/")
        if isinstance(answer, dict):
            for field in ("results", "artifacts"):
                if isinstance(answer.get(field), list):
                    return answer[field]
        return answer

    def download_artifact(self, run_id: int, path: str, dest: str | os.PathLike) -> Path:
        """Download an artifact to ``dest`` (a file path, or an existing
        directory to put it in under its own name). Returns the file written."""
        target = Path(dest)
        if target.is_dir():
            target = target / Path(path).name
        response = self._http.request("GET", f"runs/{run_id}/artifacts/download/", params={"path": path},
                                      stream=True)
        partial = target.with_name(target.name + ".part")
        try:
            with partial.open("wb") as handle:
                for chunk in response.iter_content(DOWNLOAD_CHUNK):
                    handle.write(chunk)
            partial.replace(target)
        finally:
            response.close()
            partial.unlink(missing_ok=True)
        return target
