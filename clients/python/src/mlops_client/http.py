"""The HTTP layer: one ``requests.Session``, authentication, the error shape,
and retries with exponential backoff.

Retry policy (the same one for every call, and for the background sender):

* retried: connection errors and timeouts, HTTP 429 and the 5xx answers
  500, 502, 503 and 504;
* never retried: any other 4xx, which says the request itself is wrong and
  would fail the same way again;
* the wait before attempt *n* (n = 1, 2, ...) is
  ``min(backoff_max, backoff_base * 2 ** (n - 1))`` with "full jitter"
  (a uniform draw between half of it and all of it), so that many clients
  that lost the server at once do not come back in lock step
  (Brooker, "Exponential Backoff And Jitter", AWS Architecture Blog, 2015);
  a ``Retry-After`` header in seconds is honoured when it asks for longer.

A request that reached the server but whose answer was lost may be applied
twice when retried. For ``log-batch`` that can duplicate metric points (a
param with the same value is accepted again); the client accepts that rather
than drop data.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from mlops_client.errors import MlopsApiError, MlopsConnectionError

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
USER_AGENT = "mlops-client/0.1.0"


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before giving up on one request.

    ``max_attempts`` counts the first try: 6 attempts with the defaults wait
    about 0.5 + 1 + 2 + 4 + 8 s between them, some 15 s in total."""

    max_attempts: int = 6
    backoff_base: float = 0.5
    backoff_max: float = 30.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        ceiling = min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1)))
        wait = random.uniform(ceiling / 2, ceiling)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.backoff_max))
        return wait


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare from our server, and the backoff covers it


def api_error_from(response: requests.Response) -> MlopsApiError:
    """Build the exception for a failed response, reading the documented
    ``{"error": {...}}`` body when there is one."""
    code, message, details = f"http_{response.status_code}", response.reason or "", {}
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        code = str(error.get("code") or code)
        message = str(error.get("message") or message)
        details = error.get("details") or {}
    elif response.text:
        message = (message + ": " if message else "") + response.text[:300]
    request = response.request
    return MlopsApiError(status=response.status_code, code=code, message=message, details=details,
                         method=request.method if request is not None else "",
                         url=request.url if request is not None else response.url)


class HttpTransport:
    """Sends requests to ``<base_url>/api/v1/...`` with auth and retries.

    Thread-safe in the way ``requests.Session`` is in practice for this use:
    the connection pool is shared and guarded by urllib3; no per-request state
    is kept on the session."""

    def __init__(self, base_url: str, *, api_key: str | None = None, token: str | None = None,
                 timeout: float = 30.0, retry: RetryPolicy | None = None, session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        if api_key and token:
            raise ValueError("Give api_key or token, not both.")
        self.base_url = base_url.rstrip("/")
        self.api_root = self.base_url + "/api/v1"
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.session = session or requests.Session()
        self.session.headers.setdefault("User-Agent", USER_AGENT)
        if api_key:
            self.session.headers["Authorization"] = f"Api-Key {api_key}"
        elif token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self._sleep = sleep

    def url(self, path: str) -> str:
        return self.api_root + "/" + path.lstrip("/")

    def request(self, method: str, path: str, *, json: Any = None, params: dict | None = None,
                files: Callable[[], dict] | None = None, data: dict | None = None, stream: bool = False,
                retry: RetryPolicy | None = None) -> requests.Response:
        """One API call, retried per the policy. Returns the successful
        response; raises :class:`MlopsApiError` or :class:`MlopsConnectionError`.

        ``files`` is a factory, called once per attempt, because an upload
        stream is consumed by a failed attempt and must be reopened."""
        policy = retry or self.retry
        url = self.url(path)
        attempt = 0
        while True:
            attempt += 1
            opened = files() if files is not None else None
            try:
                response = self.session.request(method, url, json=json, params=params, files=opened, data=data,
                                                timeout=self.timeout, stream=stream)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt >= policy.max_attempts:
                    raise MlopsConnectionError(
                        f"{method} {url} failed after {attempt} attempts: {exc}") from exc
                self._sleep(policy.delay(attempt))
                continue
            finally:
                for handle in (opened or {}).values():
                    stream_obj = handle[1] if isinstance(handle, tuple) else handle
                    close = getattr(stream_obj, "close", None)
                    if close is not None:
                        close()
            if response.ok:
                return response
            if response.status_code in RETRY_STATUSES and attempt < policy.max_attempts:
                wait = policy.delay(attempt, _retry_after(response))
                response.close()
                self._sleep(wait)
                continue
            error = api_error_from(response)
            response.close()
            raise error

    def json(self, method: str, path: str, **kwargs) -> Any:
        """Like :meth:`request`, returning the decoded JSON body (None for 204)."""
        response = self.request(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()
