"""``ActiveRun``: the object a ``with client.start_run(...)`` block works with."""

from __future__ import annotations

import atexit
import logging
import math
import os
import sys
import threading
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_client.batching import BatchSender
from mlops_client.errors import MlopsError

if TYPE_CHECKING:
    from mlops_client.client import MlopsClient

logger = logging.getLogger("mlops_client")

MAX_KEY_LENGTH = 250
MAX_REASON_LENGTH = 2000

_open_runs: weakref.WeakSet[ActiveRun] = weakref.WeakSet()
_open_runs_lock = threading.Lock()


def _now_ms() -> int:
    return int(time.time() * 1000)


def _check_key(kind: str, key: Any) -> str:
    # Checked here, at the call that made the mistake: on the server a bad key
    # would reject a whole batch of up to 1000 points, seconds later.
    if not isinstance(key, str) or not key.strip():
        raise ValueError(f"A {kind} key must be a non-empty string, not {key!r}.")
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"A {kind} key may have at most {MAX_KEY_LENGTH} characters: {key[:40]!r}...")
    return key


class ActiveRun:
    """A run being recorded. Logging calls are buffered and sent from a
    background thread (see :mod:`mlops_client.batching`); leaving the ``with``
    block flushes everything and finishes the run:

    * normal exit: everything is sent, then the run is ``finished``; if a
      buffered batch was rejected, the run is ``failed`` instead and the
      rejection is raised;
    * the block raised: the run is ``failed`` with the exception as its reason
      (``killed`` for Ctrl-C), and the exception propagates unchanged.

    Without a ``with`` block, call :meth:`end` yourself; runs still open when
    the interpreter exits are flushed and ended by an ``atexit`` hook."""

    def __init__(self, client: MlopsClient, info: dict[str, Any], *, flush_interval: float = 1.0,
                 max_buffered_metrics: int = 100_000):
        self._client = client
        self.info: dict[str, Any] = info
        self.id: int = info["id"]
        self._params: dict[str, str] = {}
        self._params_lock = threading.Lock()
        self._ended = False
        self._end_lock = threading.Lock()
        self._sender = BatchSender(
            lambda metrics, params, tags: client.log_batch(self.id, metrics=metrics, params=params, tags=tags),
            flush_interval=flush_interval, max_buffered_metrics=max_buffered_metrics,
            name=f"mlops-run-{self.id}-sender",
        )
        with _open_runs_lock:
            _open_runs.add(self)

    def __repr__(self) -> str:
        return f"<ActiveRun id={self.id} experiment={self.experiment_id}>"

    @property
    def experiment_id(self) -> Any:
        return self.info.get("experiment_id", self.info.get("experiment"))

    @property
    def ended(self) -> bool:
        return self._ended

    # --- params -------------------------------------------------------------------

    def log_param(self, key: str, value: Any) -> None:
        """Record an input. Params are write-once: logging the same key again
        with the same value is fine, a different value raises ``ValueError``
        here (and would be refused by the server)."""
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record several inputs (see :meth:`log_param`). Values are sent as text."""
        items = []
        with self._params_lock:
            staged: dict[str, str] = {}
            for key, value in params.items():
                _check_key("param", key)
                text = "" if value is None else str(value)
                previous = staged.get(key, self._params.get(key))
                if previous is not None and previous != text:
                    raise ValueError(
                        f"Param {key!r} was already logged as {previous!r}; params are write-once, "
                        f"so it cannot become {text!r}. Use a tag or a metric for values that change.")
                if key not in self._params and key not in staged:
                    items.append({"key": key, "value": text})
                staged[key] = text
            self._sender.add(params=items)
            self._params.update(staged)

    # --- metrics ------------------------------------------------------------------

    def log_metric(self, key: str, value: float, step: int | None = None, timestamp: int | None = None) -> None:
        """Append one point to a metric's history. ``step`` defaults to 0,
        ``timestamp`` (milliseconds since the epoch) to now. Returns at once:
        the point is sent in the background."""
        self._sender.add(metrics=[self._metric(key, value, step, timestamp)])

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None,
                    timestamp: int | None = None) -> None:
        """Append one point to each of several metrics, all at the same step."""
        stamp = _now_ms() if timestamp is None else timestamp
        self._sender.add(metrics=[self._metric(key, value, step, stamp) for key, value in metrics.items()])

    @staticmethod
    def _metric(key: str, value: Any, step: int | None, timestamp: int | None) -> dict[str, Any]:
        _check_key("metric", key)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"Metric {key!r} needs a number, not {value!r}.") from None
        if not math.isfinite(number):
            raise ValueError(f"Metric {key!r} must be finite, not {number}.")
        if step is not None and (isinstance(step, bool) or not isinstance(step, int)):
            raise ValueError(f"A metric step must be an integer, not {step!r}.")
        return {"key": key, "value": number, "step": 0 if step is None else step,
                "timestamp": _now_ms() if timestamp is None else int(timestamp)}

    # --- tags ---------------------------------------------------------------------

    def set_tag(self, key: str, value: Any) -> None:
        """Set a label on the run (tags may change; the last value wins)."""
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set several labels on the run."""
        self._sender.add(tags=[{"key": _check_key("tag", key), "value": "" if value is None else str(value)}
                               for key, value in tags.items()])

    # --- artifacts ------------------------------------------------------------------

    def log_artifact(self, local_path: str | os.PathLike, artifact_path: str | None = None) -> dict[str, Any]:
        """Upload a file now (not buffered) as ``<artifact_path>/<file name>``
        (or just the file name). Returns the server's artifact record."""
        self._check_open()
        return self._client.log_artifact(self.id, local_path, artifact_path=artifact_path)

    def log_artifacts(self, local_dir: str | os.PathLike, artifact_path: str | None = None) -> list[dict[str, Any]]:
        """Upload every file under a directory, keeping its relative layout."""
        self._check_open()
        root = Path(local_dir)
        uploaded = []
        for file in sorted(p for p in root.rglob("*") if p.is_file()):
            relative_dir = file.parent.relative_to(root).as_posix()
            parts = [part for part in (artifact_path, relative_dir) if part and part != "."]
            uploaded.append(self._client.log_artifact(self.id, file, artifact_path="/".join(parts) or None))
        return uploaded

    # --- lifecycle ------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> None:
        """Block until everything logged so far has reached the server."""
        self._sender.flush(timeout=timeout)

    def end(self, status: str = "finished", reason: str = "") -> None:
        """Send what is buffered, then finish the run with ``status``
        (``finished``, ``failed`` or ``killed``). If sending fails, the run is
        marked ``failed`` with that reason and the error is raised."""
        with self._end_lock:
            if self._ended:
                return
            self._ended = True
        try:
            self._sender.close()
        except MlopsError as exc:
            self._finish_quietly("failed", f"logging failed: {exc}")
            raise
        finally:
            with _open_runs_lock:
                _open_runs.discard(self)
        self._client.finish_run(self.id, status=status, reason=reason)

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.end("finished")
            return False
        status = "killed" if issubclass(exc_type, KeyboardInterrupt) else "failed"
        self._end_after_error(status, f"{exc_type.__name__}: {exc}")
        return False

    def _end_after_error(self, status: str, reason: str) -> None:
        # The block's own exception must propagate unchanged, so anything
        # that goes wrong while closing is logged, not raised.
        with self._end_lock:
            if self._ended:
                return
            self._ended = True
        try:
            self._sender.close()
        except MlopsError as exc:
            reason += f"; logging also failed: {exc}"
            logger.warning("run %s: %s", self.id, exc)
        finally:
            with _open_runs_lock:
                _open_runs.discard(self)
        self._finish_quietly(status, reason)

    def _finish_quietly(self, status: str, reason: str) -> None:
        try:
            self._client.finish_run(self.id, status=status, reason=reason[:MAX_REASON_LENGTH])
        except MlopsError as exc:
            logger.warning("run %s could not be marked %s: %s", self.id, status, exc)

    def _check_open(self) -> None:
        if self._ended:
            raise MlopsError(f"Run {self.id} has ended; nothing more can be logged to it.")


@atexit.register
def _end_open_runs() -> None:
    """Runs left open at exit: flush them so no metric is lost, and end them
    ``failed`` if the program died of an uncaught exception, else ``finished``."""
    with _open_runs_lock:
        runs = list(_open_runs)
    uncaught = getattr(sys, "last_value", None)
    for run in runs:
        if uncaught is not None:
            run._end_after_error("failed", f"{type(uncaught).__name__}: {uncaught}")
            continue
        try:
            run.end("finished")
        except MlopsError as exc:
            logger.warning("run %s could not be ended at exit: %s", run.id, exc)
