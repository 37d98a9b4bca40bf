"""The sandbox HTTPS server: one loopback port, the services mounted by path prefix, admin API.

Admin endpoints live under /__sandbox__/, a prefix no real API uses (docs/sandbox.md):
  POST /__sandbox__/reset            {"seed": "demo", "params": {...}, "services": [...]}
  GET|POST /__sandbox__/faults       {"service": "salesforce", "error_rate": 0.1, ...}
  GET /__sandbox__/counters          calls per service and endpoint kind
  POST /__sandbox__/counters/reset
  GET /__sandbox__/info              the same JSON as `sandbox serve` prints
  *   /__sandbox__/{service}/{action} service-specific actions
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from scc_desktop.paths import make_private_dir, make_private_file
from scc_desktop.sandbox.service import (
    CallCounters,
    DropConnection,
    FaultProfile,
    SandboxService,
    json_response,
)
from scc_desktop.sandbox.tls import SandboxCA

log = logging.getLogger(__name__)

ADMIN_PREFIX = "/__sandbox__"
LOOPBACK = "127.0.0.1"
SEEDS = ("empty", "demo", "large")
PORT_FILE = "port"

ServiceFactory = Callable[[Path, str], SandboxService]


def default_service_factories() -> list[ServiceFactory]:
    """The emulators shipped with the app, in mount order."""
    factories: list[ServiceFactory] = []
    from scc_desktop.sandbox.salesforce.service import SalesforceService

    factories.append(SalesforceService)
    from scc_desktop.sandbox.microsoft.service import MicrosoftService

    factories.append(MicrosoftService)
    return factories


class _AfterBody:
    """The handler's input while werkzeug runs one request: werkzeug drains the socket after
    each response (it assumes the connection closes), which on a kept-alive connection would
    swallow the next request. Once the application has read its body, reads return nothing."""

    def __init__(self, raw: Any, handler: _QuietHandler) -> None:
        self._raw = raw
        self._handler = handler

    def read(self, *args: Any) -> bytes:
        if self._handler.body_read():
            return b""
        data: bytes = self._raw.read(*args)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


class _QuietHandler(WSGIRequestHandler):
    """HTTP/1.1 with keep-alive, like the real services: werkzeug's development server always
    answers `Connection: close`, so every call would pay a new TCP and TLS handshake. A
    connection stays open when the request's body was read to its end (so the next request
    line is where the stream is), and closes after `timeout` seconds idle."""

    protocol_version = "HTTP/1.1"
    timeout = 30
    # buffered output (the headers and the body leave in one write) and no Nagle (a response
    # larger than the buffer leaves in several): else a kept-alive connection waits for the
    # client's delayed ACK (40 ms) on many responses
    wbufsize = -1
    disable_nagle_algorithm = True
    _environ: dict[str, Any] | None = None

    def run_wsgi(self) -> None:
        raw = self.rfile
        self._environ = None
        self.rfile = _AfterBody(raw, self)  # type: ignore[assignment]
        try:
            super().run_wsgi()
        finally:
            self.rfile = raw

    def make_environ(self) -> Any:
        environ = super().make_environ()
        self._environ = environ
        return environ

    def body_read(self) -> bool:
        return bool(self._environ and self._environ.get("sandbox.body_read"))

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() == "connection" and value.lower() == "close" and self._reusable():
            return
        super().send_header(keyword, value)

    def _reusable(self) -> bool:
        if self.close_connection or "chunked" in self.headers.get("Transfer-Encoding", ""):
            return False
        return self.body_read()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug("%s %s -> %s", self.command, self.path, code)

    def log_error(self, format: str, *args: Any) -> None:
        log.debug("sandbox: " + format, *args)

    def log(self, type: str, message: str, *args: Any) -> None:
        log.debug("sandbox %s: " + message, type, *args)


class SandboxServer:
    """Serve the emulators on 127.0.0.1 over TLS. Use `start()` for a background thread."""

    def __init__(
        self,
        data_dir: Path,
        port: int = 0,
        seed: str | None = None,
        factories: Iterable[ServiceFactory] | None = None,
    ) -> None:
        if seed is not None and seed not in SEEDS:
            raise ValueError(f"unknown seed {seed!r}; choose one of {', '.join(SEEDS)}")
        self.data_dir = make_private_dir(Path(data_dir))
        self.ca = SandboxCA.load_or_create(self.data_dir)
        self.counters = CallCounters()
        self._server = self._bind(port)
        self.port = int(self._server.server_port)
        make_private_file(self.data_dir / PORT_FILE).write_text(str(self.port), encoding="utf-8")
        self.base_url = f"https://{LOOPBACK}:{self.port}"
        self.services: list[SandboxService] = [
            factory(self.data_dir, self.base_url)
            for factory in (factories if factories is not None else default_service_factories())
        ]
        for service in self.services:
            if seed is not None:
                service.reset(seed, {})
            elif service.is_empty():
                service.reset("demo", {})
        self._thread: threading.Thread | None = None

    def _bind(self, port: int) -> BaseWSGIServer:
        """Bind loopback; with port 0, the port this data folder used last time when it is free,
        so clients' stored URLs stay valid across restarts."""

        def make(p: int) -> BaseWSGIServer:
            return make_server(
                LOOPBACK,
                p,
                self._wsgi,
                threaded=True,
                request_handler=_QuietHandler,
                ssl_context=self.ca.server_context(),
            )

        remembered = self.data_dir / PORT_FILE
        if port == 0 and remembered.exists():
            try:
                return make(int(remembered.read_text(encoding="utf-8").strip()))
            except (OSError, ValueError):
                pass
        return make(port)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> SandboxServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="sandbox-server", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        for service in self.services:
            service.close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- description -------------------------------------------------------------------------
    @property
    def admin_url(self) -> str:
        return f"{self.base_url}{ADMIN_PREFIX}"

    def info(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "base_url": self.base_url,
            "ca_file": str(self.ca.ca_file),
            "admin_url": self.admin_url,
            "data_dir": str(self.data_dir),
        }
        for service in self.services:
            data[service.name] = service.info()
        return data

    def service(self, name: str) -> SandboxService:
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(name)

    # -- dispatch ------------------------------------------------------------------------
    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self._dispatch(request)
        except DropConnection:
            self._drop(environ)
            response = Response(b"", status=500)
        else:
            # read what the handler left of the body, so the connection can serve the next
            # request (keep-alive, see _QuietHandler)
            with contextlib.suppress(OSError, ValueError):
                request.stream.read()
                environ["sandbox.body_read"] = True
        return response(environ, start_response)

    @staticmethod
    def _drop(environ: dict[str, Any]) -> None:
        sock = environ.get("werkzeug.socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _dispatch(self, request: Request) -> Response:
        path = request.path
        if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
            return self._admin(request, path[len(ADMIN_PREFIX) :].strip("/"))
        for service in self.services:
            if any(path.startswith(prefix) for prefix in service.prefixes):
                return self._serve(service, request)
        return json_response({"error": "not_found", "path": path}, status=404)

    def _serve(self, service: SandboxService, request: Request) -> Response:
        self.counters.add(service.name, service.endpoint_kind(request))
        profile = service.faults
        if profile.latency_ms > 0:
            time.sleep(profile.latency_ms / 1000)
        if service.counts_towards_faults(request):
            if profile.chance(profile.drop_rate):
                raise DropConnection
            if profile.chance(profile.throttle_rate):
                retry = max(1, round(profile.retry_after_s))
                return service.error_response(
                    429,
                    "TooManyRequests",
                    "Too many requests. Retry after the time given in Retry-After.",
                    {"Retry-After": str(retry)},
                )
            if profile.chance(profile.error_rate):
                status = 500 if profile.rng.random() < 0.5 else 503
                return service.error_response(
                    status, "ServerUnavailable", "The service is temporarily unavailable."
                )
        return service.handle(request)

    def _admin(self, request: Request, action: str) -> Response:
        body: dict[str, Any] = {}
        if request.method in ("POST", "PUT", "PATCH") and request.get_data():
            try:
                body = json.loads(request.get_data())
            except ValueError:
                return json_response({"error": "body must be JSON"}, status=400)
        if action in ("", "info"):
            return json_response(self.info())
        if action == "reset" and request.method == "POST":
            seed = str(body.get("seed", "demo"))
            if seed not in SEEDS:
                return json_response({"error": f"unknown seed {seed!r}"}, status=400)
            wanted = body.get("services")
            for service in self.services:
                if wanted is None or service.name in wanted:
                    service.reset(seed, body.get("params", {}))
            self.counters.reset()
            return json_response({"ok": True, "seed": seed})
        if action == "faults":
            if request.method == "POST":
                targets = [s for s in self.services if body.get("service") in (None, s.name)]
                try:
                    for service in targets:
                        service.faults = FaultProfile.from_json(body)
                except (TypeError, ValueError) as exc:
                    return json_response({"error": str(exc)}, status=400)
            return json_response({s.name: s.faults.to_json() for s in self.services})
        if action == "counters":
            return json_response(self.counters.snapshot())
        if action == "counters/reset" and request.method == "POST":
            self.counters.reset()
            return json_response({"ok": True})
        name, _, sub = action.partition("/")
        for service in self.services:
            if service.name == name:
                return service.admin(request, sub)
        return json_response({"error": f"unknown admin action {action!r}"}, status=404)
