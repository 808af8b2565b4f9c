"""Buffered, background logging for one run.

Calls such as ``run.log_metric`` only append to an in-memory buffer and return
at once; a daemon thread sends the buffer with ``log-batch``:

* as soon as 1000 metrics (or 100 params, or 100 tags) are waiting — the
  server's per-call limits, so every full batch is one request;
* otherwise once the oldest waiting item is ``flush_interval`` seconds old
  (1 s by default), so a slow trickle still reaches the server promptly;
* at once when :meth:`BatchSender.flush` or :meth:`BatchSender.close` asks.

Failures, and where they surface:

* Transient (connection refused, timeout, 5xx, 429): the transport retries
  with exponential backoff. If every retry fails the items stay buffered, the
  error is raised once (per outage) from the next logging call, and the
  thread keeps trying every ``retry_pause`` seconds. Memory stays bounded: once ``max_buffered_metrics`` metrics are
  waiting, a logging call blocks until the sender makes room, and raises
  :class:`~mlops_client.errors.MlopsConnectionError` instead while the server
  is unreachable — a point is never dropped without the caller being told.
* Permanent (any other 4xx): the server rejected the batch as a whole, so its
  items are discarded and a :class:`~mlops_client.errors.BatchRejectedError`
  naming the server's reason is raised from the next logging call, from
  ``flush()``, or from ``close()`` (the end of the ``with`` block).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from itertools import islice
from typing import Any

from mlops_client.errors import BatchRejectedError, MlopsApiError, MlopsConnectionError, MlopsError
from mlops_client.http import RETRY_STATUSES

MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_PER_BATCH = 100
MAX_TAGS_PER_BATCH = 100
DEFAULT_MAX_BUFFERED_METRICS = 100_000

SendBatch = Callable[[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]], Any]


class BatchSender:
    """A thread-safe buffer of metrics, params and tags plus the thread that
    drains it through ``send(metrics, params, tags)``."""

    def __init__(self, send: SendBatch, *, flush_interval: float = 1.0,
                 max_buffered_metrics: int = DEFAULT_MAX_BUFFERED_METRICS, retry_pause: float = 2.0,
                 name: str = "mlops-batch-sender"):
        if max_buffered_metrics < MAX_METRICS_PER_BATCH:
            raise ValueError(f"max_buffered_metrics must be at least {MAX_METRICS_PER_BATCH}")
        self._send = send
        self.flush_interval = flush_interval
        self.max_buffered_metrics = max_buffered_metrics
        self._retry_pause = retry_pause
        self._cond = threading.Condition()
        self._metrics: deque[dict[str, Any]] = deque()
        self._params: deque[dict[str, Any]] = deque()
        self._tags: deque[dict[str, Any]] = deque()
        self._oldest_at: float | None = None  # monotonic time the oldest waiting item arrived
        self._enqueued = 0  # items ever accepted
        self._settled = 0  # items sent or discarded
        self._flush_target = 0
        self._pause_until = 0.0
        self._pending_error: MlopsError | None = None  # raised once, from the next call
        self._unreachable: MlopsConnectionError | None = None  # set while the last attempt failed
        self._failed_rounds = 0  # rounds of retries that ended in a transient failure
        self._closing = False
        self._thread = threading.Thread(target=self._drain, name=name, daemon=True)
        self._thread.start()

    # --- producer side ------------------------------------------------------------

    def add(self, *, metrics: Iterable[dict[str, Any]] = (), params: Iterable[dict[str, Any]] = (),
            tags: Iterable[dict[str, Any]] = ()) -> None:
        """Buffer items; raises a pending error from the sender first."""
        with self._cond:
            self._raise_pending()
            if self._closing:
                raise MlopsError("This run has ended; nothing more can be logged to it.")
            was_empty = self._oldest_at is None
            added = 0
            for metric in metrics:
                while len(self._metrics) >= self.max_buffered_metrics:
                    if self._unreachable is not None:
                        if isinstance(self._pending_error, MlopsConnectionError):
                            self._pending_error = None  # this error says the same, and more
                        raise MlopsConnectionError(
                            f"{len(self._metrics)} metrics are buffered (the limit is max_buffered_metrics="
                            f"{self.max_buffered_metrics}) and the server cannot be reached: {self._unreachable}"
                        )
                    self._cond.notify_all()
                    self._cond.wait(0.5)
                self._metrics.append(metric)
                added += 1
                self._mark_waiting()
            for param in params:
                self._params.append(param)
                added += 1
            for tag in tags:
                self._tags.append(tag)
                added += 1
            if added:
                self._enqueued += added
                self._mark_waiting()
                # Wake the sender only when it has something new to decide:
                # a first item starts the flush-interval clock, a full batch
                # goes at once. Waking it on every call would cost a thread
                # switch per logged point.
                if was_empty or self._batch_full():
                    self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> None:
        """Block until everything buffered before this call is sent (or
        discarded by a rejection, which is then raised)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            target = self._enqueued
            failed_rounds = self._failed_rounds
            self._flush_target = max(self._flush_target, target)
            self._pause_until = 0.0
            self._cond.notify_all()
            while self._settled < target:
                if self._pending_error is not None or not self._thread.is_alive():
                    break
                if self._failed_rounds > failed_rounds:
                    # One full round of retries failed during this flush:
                    # report it rather than wait for an outage to end.
                    self._pending_error = None
                    raise MlopsConnectionError(
                        f"{self.buffered_count()} buffered items could not be sent: {self._unreachable}")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise MlopsConnectionError(
                        f"flush timed out after {timeout}s with {self.buffered_count()} items still buffered")
                self._cond.wait(remaining)
            self._raise_pending()
            if self._settled < target:
                raise MlopsConnectionError(f"{self.buffered_count()} buffered items could not be sent")

    def close(self) -> None:
        """Send everything, stop the thread, and raise whatever went wrong.

        On a connection failure during closing the thread stops after one full
        round of retries rather than trying forever; the error says how many
        items were not sent."""
        with self._cond:
            self._closing = True
            self._flush_target = self._enqueued
            self._pause_until = 0.0
            self._cond.notify_all()
        self._thread.join()
        with self._cond:
            pending, self._pending_error = self._pending_error, None
            left = self.buffered_count()
            if left:
                cause = pending or self._unreachable or "the sender stopped"
                raise MlopsConnectionError(f"{left} buffered items could not be sent: {cause}")
            if pending is not None:
                raise pending

    def buffered_count(self) -> int:
        """Items waiting to be sent (metrics + params + tags)."""
        return len(self._metrics) + len(self._params) + len(self._tags)

    @property
    def closed(self) -> bool:
        return self._closing

    # --- internals ----------------------------------------------------------------

    def _raise_pending(self) -> None:
        error, self._pending_error = self._pending_error, None
        if error is not None:
            raise error

    def _mark_waiting(self) -> None:
        if self._oldest_at is None:
            self._oldest_at = time.monotonic()

    def _batch_full(self) -> bool:
        return (len(self._metrics) >= MAX_METRICS_PER_BATCH or len(self._params) >= MAX_PARAMS_PER_BATCH
                or len(self._tags) >= MAX_TAGS_PER_BATCH)

    def _next_batch(self) -> tuple[list, list, list] | None:
        """Wait (holding the condition) until a batch is due; None means stop."""
        while True:
            waiting = self.buffered_count()
            if not waiting:
                self._oldest_at = None
                if self._closing:
                    return None
                self._cond.wait()
                continue
            now = time.monotonic()
            if now < self._pause_until:
                self._cond.wait(self._pause_until - now)
                continue
            due_at = (self._oldest_at or now) + self.flush_interval
            if self._closing or self._batch_full() or self._flush_target > self._settled or now >= due_at:
                return (list(islice(self._metrics, MAX_METRICS_PER_BATCH)),
                        list(islice(self._params, MAX_PARAMS_PER_BATCH)),
                        list(islice(self._tags, MAX_TAGS_PER_BATCH)))
            self._cond.wait(due_at - now)

    def _settle(self, metrics: list, params: list, tags: list) -> None:
        # Only this thread removes items and always from the left, so the
        # first len(batch) items are exactly the ones that were sent.
        for queue, batch in ((self._metrics, metrics), (self._params, params), (self._tags, tags)):
            for _ in range(len(batch)):
                queue.popleft()
        self._settled += len(metrics) + len(params) + len(tags)
        if not self.buffered_count():
            self._oldest_at = None

    def _drain(self) -> None:
        while True:
            with self._cond:
                batch = self._next_batch()
            if batch is None:
                return
            metrics, params, tags = batch
            try:
                self._send(metrics, params, tags)
            except MlopsApiError as exc:
                with self._cond:
                    if exc.status in RETRY_STATUSES:
                        if self._fail_transient(exc):
                            return
                    else:
                        self._settle(metrics, params, tags)
                        self._pending_error = BatchRejectedError(
                            exc, discarded={"metrics": len(metrics), "params": len(params), "tags": len(tags)})
                    self._cond.notify_all()
                continue
            except MlopsConnectionError as exc:
                with self._cond:
                    stop = self._fail_transient(exc)
                    self._cond.notify_all()
                if stop:
                    return
                continue
            except Exception as exc:  # a bug or an unexpected answer: never loop on the same batch
                with self._cond:
                    self._settle(metrics, params, tags)
                    self._pending_error = MlopsError(f"sending a log-batch failed unexpectedly: {exc!r}")
                    self._cond.notify_all()
                continue
            with self._cond:
                self._settle(metrics, params, tags)
                if isinstance(self._pending_error, MlopsConnectionError):
                    self._pending_error = None  # the outage is over and nothing was lost
                self._unreachable = None
                self._cond.notify_all()

    def _fail_transient(self, exc: MlopsError) -> bool:
        """Keep the batch for a later attempt; True when the thread should stop."""
        error = exc if isinstance(exc, MlopsConnectionError) else MlopsConnectionError(str(exc))
        if self._unreachable is None:
            # Told once per outage, not after every round of retries.
            self._pending_error = error
        self._unreachable = error
        self._failed_rounds += 1
        self._pause_until = time.monotonic() + self._retry_pause
        return self._closing
