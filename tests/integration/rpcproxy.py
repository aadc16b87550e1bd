"""A JSON-RPC proxy in front of a node that misbehaves for one method, the way networks do:
`lose` forwards the call and drops the answer (the node acted, the caller cannot know);
`refuse` drops the call before it reaches the node (nothing happened). Other calls pass."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

import requests

Mode = Literal["pass", "lose", "refuse"]


class RpcProxy:
    def __init__(self, upstream: str, method: str) -> None:
        self.upstream = upstream
        self.method = method
        self.mode: Mode = "pass"
        #: Calls of `method` that were lost or refused.
        self.interfered = 0
        self._lock = threading.Lock()
        self._http = requests.Session()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                method = json.loads(body).get("method")
                with proxy._lock:
                    mode = proxy.mode if method == proxy.method else "pass"
                    if mode != "pass":
                        proxy.interfered += 1
                if mode == "refuse":
                    self.close_connection = True
                    return
                answer = proxy._http.post(
                    proxy.upstream,
                    data=body,
                    headers={"Content-Type": "application/json"},
                    timeout=10,
                )
                if mode == "lose":
                    self.close_connection = True
                    return
                self.send_response(answer.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

        return Handler

    @contextmanager
    def running(self) -> Iterator[RpcProxy]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            self._http.close()
