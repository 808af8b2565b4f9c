"""Prediction logging off the request thread.

The predict view appends one tuple per request to an in-process list (a few
hundred nanoseconds under the GIL); a daemon thread writes the list to the
database with ``bulk_create`` every ``FLUSH_INTERVAL`` seconds (0.5 s). So:

* a process killed with SIGKILL loses at most the requests of the last
  flush interval plus the one being written (well under a second);
* a graceful stop loses nothing: the gunicorn ``worker_exit`` hook
  (``gunicorn.conf.py``) and an ``atexit`` handler flush what is left, and
  ``flush()`` may be called at any time (tests, management commands, tasks).

A request answered inside a database transaction (a test wrapped in one, a
service calling the predict path inside ``atomic()``) is not written by the
thread — its rows could reference rows the thread's connection cannot see
yet — but when that transaction commits, or by an explicit ``flush()``.

The buffer is bounded (``MAX_PENDING`` rows): when the database is down the
oldest rows are dropped rather than the web process growing without limit,
and the count of dropped rows is kept in ``dropped``.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from datetime import datetime

from django.db import connection, transaction

logger = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.5
MAX_PENDING = 200_000
BATCH_SIZE = 1000

# (endpoint_id, deployment_id, model_version_id, request_id, unit_id, n_instances,
#  inputs, predictions, probabilities, latency_ms, status_code, error, serving_path, created_at)
Row = tuple


class PredictionLogBuffer:
    """The per-process buffer and its flusher thread."""

    def __init__(self, interval: float = FLUSH_INTERVAL):
        self.interval = interval
        self.use_thread = True
        self.dropped = 0
        self.written = 0
        self._rows: list[Row] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._atexit = False

    # --- producers ---------------------------------------------------------------

    def append(self, row: Row) -> None:
        if self._pid != os.getpid():
            self._after_fork()
        rows = self._rows
        rows.append(row)
        if len(rows) > MAX_PENDING:
            with self._lock:
                excess = len(self._rows) - MAX_PENDING
                if excess > 0:
                    del self._rows[:excess]
                    self.dropped += excess
        if connection.in_atomic_block:
            transaction.on_commit(self.flush, robust=True)
        elif self.use_thread and self._thread is None:
            self._start()

    def pending(self) -> int:
        return len(self._rows)

    # --- the flusher -------------------------------------------------------------

    def _after_fork(self) -> None:
        # A forked child (a gunicorn worker) inherits the parent's list but
        # not its thread: start clean.
        self._pid = os.getpid()
        self._rows = []
        self._thread = None
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            thread = threading.Thread(target=self._run, name="prediction-log-flusher", daemon=True)
            self._thread = thread
            if not self._atexit:
                atexit.register(self.flush)
                self._atexit = True
        thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                if self.flush():
                    # Like the end of a request: keep this thread's connection
                    # only as long as CONN_MAX_AGE allows (0: close it now).
                    connection.close_if_unusable_or_obsolete()
            except Exception:  # the thread must survive a database outage
                logger.exception("prediction log flush failed")
                # This thread's own connection may be broken; the next flush reconnects.
                connection.close()

    def flush(self) -> int:
        """Write everything buffered so far; returns the number of rows written.
        Rows that fail to write are put back (up to ``MAX_PENDING``)."""
        from apps.serving.models import PredictionLog

        with self._flush_lock:
            with self._lock:
                rows, self._rows = self._rows, []
            if not rows:
                return 0
            objects = [
                PredictionLog(
                    endpoint_id=r[0], deployment_id=r[1], model_version_id=r[2], request_id=r[3], unit_id=r[4],
                    n_instances=r[5], inputs=r[6], predictions=r[7], probabilities=r[8], latency_ms=r[9],
                    status_code=r[10], error=r[11], serving_path=r[12], created_at=r[13],
                )
                for r in rows
            ]
            try:
                PredictionLog.objects.bulk_create(objects, batch_size=BATCH_SIZE)
            except Exception:
                with self._lock:
                    room = MAX_PENDING - len(self._rows)
                    kept = rows[-room:] if room > 0 else []
                    self.dropped += len(rows) - len(kept)
                    self._rows = kept + self._rows
                raise
            self.written += len(objects)
            return len(objects)

    def clear(self) -> None:
        """Forget buffered rows (tests)."""
        with self._lock:
            self._rows = []


buffer = PredictionLogBuffer()


def log_prediction(*, endpoint_id: int, deployment_id: int, model_version_id: int, request_id: str,
                   unit_id: str, n_instances: int, inputs: list, predictions: list, probabilities,
                   latency_ms: float, status_code: int, error: str, serving_path: str,
                   created_at: datetime) -> None:
    buffer.append((endpoint_id, deployment_id, model_version_id, request_id, unit_id, n_instances, inputs,
                   predictions, probabilities, latency_ms, status_code, error, serving_path, created_at))


def flush() -> int:
    return buffer.flush()


__all__ = ["buffer", "flush", "log_prediction"]
