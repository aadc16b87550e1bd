"""An HTTP proxy in front of a provider emulator that loses answers on purpose: the request
reaches the provider, which acts on it, and the connection is then closed without an answer.
That is the unknown outcome a real network produces, for an emulator that cannot fake it."""

from __future__ import annotations

import http.client
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "host"})


class AnswerLosingProxy:
    """Forwards everything to `upstream`; the answers of the first `lose` requests with this
    method and path are lost after the upstream has acted on them."""

    def __init__(self, upstream: str, *, method: str, path: str, lose: int) -> None:
        self._upstream = urlsplit(upstream)
        self._method, self._path = method, path
        self._to_lose = lose
        self._lock = threading.Lock()
        self.lost = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                proxy.forward(self)

            def do_POST(self) -> None:
                proxy.forward(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> AnswerLosingProxy:
        self._thread.start()
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _loses(self, method: str, path: str) -> bool:
        with self._lock:
            if (
                method == self._method
                and path.split("?", maxsplit=1)[0] == self._path
                and self._to_lose
            ):
                self._to_lose -= 1
                self.lost += 1
                return True
            return False

    def forward(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length", "0")))
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP_BY_HOP}
        upstream = http.client.HTTPConnection(
            self._upstream.hostname or "127.0.0.1", self._upstream.port, timeout=10
        )
        try:
            upstream.request(handler.command, handler.path, body, headers)
            answer = upstream.getresponse()
            data = answer.read()
        finally:
            upstream.close()
        if self._loses(handler.command, handler.path):
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        handler.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in _HOP_BY_HOP:
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
