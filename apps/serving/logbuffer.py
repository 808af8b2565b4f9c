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
import json
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
#  inputs, predictions, probabilities, latency_ms, status_code, error, serving_path, created_at,
#  principal_user_id, principal_api_key_id)
Row = tuple
FIELDS = ("endpoint", "deployment", "model_version", "request_id", "unit_id", "n_instances", "inputs",
          "predictions", "probabilities", "latency_ms", "status_code", "error", "serving_path", "created_at",
          "principal_user_id", "principal_api_key_id", "split_id", "split_arm")
JSON_POSITIONS = (6, 7, 8)


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
        with self._flush_lock:
            with self._lock:
                rows, self._rows = self._rows, []
            if not rows:
                return 0
            try:
                _write(rows)
            except Exception:
                with self._lock:
                    room = MAX_PENDING - len(self._rows)
                    kept = rows[-room:] if room > 0 else []
                    self.dropped += len(rows) - len(kept)
                    self._rows = kept + self._rows
                raise
            self.written += len(rows)
            return len(rows)

    def clear(self) -> None:
        """Forget buffered rows (tests). Waits for a flush in progress, so its
        rows cannot be put back after the clear."""
        with self._flush_lock, self._lock:
            self._rows = []


def _write(rows: list[Row]) -> None:
    """Write ``rows`` in one go: PostgreSQL's COPY (no model instances, no
    INSERT to compile: the flusher holds the GIL, which the request threads
    need, for as short a time as it can), ``bulk_create`` elsewhere."""
    from apps.serving.models import PredictionLog

    if connection.vendor != "postgresql":
        PredictionLog.objects.bulk_create(
            [PredictionLog(**{f"{name}_id" if position < 3 else name: row[position]
                              for position, name in enumerate(FIELDS)}) for row in rows],
            batch_size=BATCH_SIZE)
        return
    from psycopg import sql

    columns = [PredictionLog._meta.get_field(name).column for name in FIELDS]
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(PredictionLog._meta.db_table), sql.SQL(", ").join(sql.Identifier(c) for c in columns))
    dumps = json.dumps
    with transaction.atomic(), connection.cursor() as cursor, cursor.cursor.copy(statement) as copy:
        write_row = copy.write_row
        for row in rows:
            values = list(row)
            for position in JSON_POSITIONS:
                if values[position] is not None:
                    values[position] = dumps(values[position])
            write_row(values)


buffer = PredictionLogBuffer()


def log_prediction(*, endpoint_id: int, deployment_id: int, model_version_id: int, request_id: str,
                   unit_id: str, n_instances: int, inputs: list, predictions: list, probabilities,
                   latency_ms: float, status_code: int, error: str, serving_path: str,
                   created_at: datetime, principal_user_id: int | None = None,
                   principal_api_key_id: int | None = None, split_id: int | None = None,
                   split_arm: int | None = None) -> None:
    buffer.append((endpoint_id, deployment_id, model_version_id, request_id, unit_id, n_instances, inputs,
                   predictions, probabilities, latency_ms, status_code, error, serving_path, created_at,
                   principal_user_id, principal_api_key_id, split_id, split_arm))


def flush() -> int:
    return buffer.flush()


__all__ = ["buffer", "flush", "log_prediction"]
