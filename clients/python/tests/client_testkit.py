"""Helpers for the client's tests: a ``requests.Session`` that counts what it
sends, and a small HTTP proxy in front of the live server that can answer
503/429, drop connections (the server is "down") or forward, so retries are
tested over real sockets rather than against a mocked server."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
import requests


@dataclass
class TrackingServer:
    url: str
    api_key: str
    user: object


class CountingSession(requests.Session):
    """Records (method, path) of every request actually sent."""

    def __init__(self):
        super().__init__()
        self.sent: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def send(self, request, **kwargs):
        with self._lock:
            self.sent.append((request.method, urlsplit(request.url).path))
        return super().send(request, **kwargs)

    def count(self, method: str, path_suffix: str) -> int:
        with self._lock:
            return sum(1 for m, p in self.sent if m == method and p.endswith(path_suffix))


# --- the proxy ------------------------------------------------------------------------

@dataclass
class ProxyLog:
    method: str
    path: str
    at: float
    answer: str


@dataclass
class FaultPlan:
    """What the proxy does with the next requests whose path contains
    ``path_contains``: a list of actions used up in order, then forwarding.
    An action is ``"forward"``, ``"drop"`` (close the connection without an
    answer) or an HTTP status with optional headers, e.g. ``(503, {})``."""

    path_contains: str = ""
    actions: list = field(default_factory=list)
    down: bool = False  # drop every request while set


class FaultyProxy:
    def __init__(self, target_url: str):
        target = urlsplit(target_url)
        self.target_host, self.target_port = target.hostname, target.port
        self.plan = FaultPlan()
        self.log: list[ProxyLog] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                action = proxy._next_action(self.path)
                with proxy.lock:
                    proxy.log.append(ProxyLog(self.command, self.path.split("?")[0], time.monotonic(), str(action)))
                if action == "drop":
                    self.close_connection = True
                    return
                if isinstance(action, tuple):
                    status, headers = action
                    payload = (b'{"error": {"code": "unavailable", "message": "injected by the test proxy", '
                               b'"details": {}}}')
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                upstream = http.client.HTTPConnection(proxy.target_host, proxy.target_port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                upstream.close()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _next_action(self, path: str):
        with self.lock:
            if self.plan.down:
                return "drop"
            if self.plan.actions and self.plan.path_contains in path:
                return self.plan.actions.pop(0)
        return "forward"

    def fail_next(self, path_contains: str, *actions) -> None:
        with self.lock:
            self.plan.path_contains = path_contains
            self.plan.actions = list(actions)

    def set_down(self, down: bool) -> None:
        with self.lock:
            self.plan.down = down

    def requests_to(self, path_contains: str) -> list[ProxyLog]:
        with self.lock:
            return [entry for entry in self.log if path_contains in entry.path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")
