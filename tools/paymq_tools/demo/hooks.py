"""The demo's webhook subscriber and metrics reader.

A receiver on a local port takes the webhooks `paymq webhooks run` POSTs. It verifies each
signature with the endpoint's secret, as a real subscriber would, and counts the events by
webhook-id. To show the retries, it answers 503 to the first attempt of every fifth event.
At the end, the demo reads the card worker's Prometheus endpoint and prints what it counted.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

import requests
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from common.errors import WebhookSignatureInvalid
from common.webhooks import HEADER_ID, verify_webhook
from webhooks.endpoints import add_endpoint

console = Console(highlight=False)

#: Every n-th new event first gets a 503, so the demo shows a retried delivery.
REFUSE_EVERY = 5


class DemoReceiver:
    def __init__(self) -> None:
        self.secret = ""
        self.attempts: Counter[str] = Counter()
        self.verified: set[str] = set()
        self.invalid = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def register(self, endpoints_file: Path) -> None:
        self.secret = add_endpoint(
            endpoints_file, self.url, endpoint_id="demo-shop", allow_private_networks=True
        ).secret

    def __enter__(self) -> DemoReceiver:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _take(self, headers: dict[str, str], body: bytes) -> int:
        """The status to answer."""
        try:
            verify_webhook(self.secret, headers, body)
        except WebhookSignatureInvalid:
            with self._lock:
                self.invalid += 1
            return 400
        event_id = headers[HEADER_ID]
        with self._lock:
            self.attempts[event_id] += 1
            first = self.attempts[event_id] == 1
            if first and len(self.attempts) % REFUSE_EVERY == 0:
                return 503
            self.verified.add(event_id)
        return 200

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                status = receiver._take(dict(self.headers.items()), body)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        return Handler

    def await_events(self, event_ids: Iterable[str], timeout_s: float) -> bool:
        """Until every event arrived verified (True), or the time is up (False)."""
        wanted = set(event_ids)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if wanted <= self.verified:
                    break
            time.sleep(0.1)
        with self._lock:
            missing = wanted - self.verified
            retried = sum(1 for e in wanted if self.attempts[e] > 1)
            invalid = self.invalid
        ok = not missing and invalid == 0
        mark = "[green]✓[/green]" if ok else "[red]✗[/red]"
        console.print(
            f"{mark} webhooks: {len(wanted) - len(missing)} of {len(wanted)} final results "
            f"POSTed to {self.url}, every signature verified; {retried} after a 503 and a "
            f"retry" + (f"; [red]{invalid} bad signatures[/red]" if invalid else "")
        )
        return ok


def print_metrics(name: str, url: str) -> None:
    """A few of a worker's Prometheus figures, as scraped from `url`."""
    try:
        text = requests.get(url, timeout=5).text
    except requests.RequestException as exc:
        console.print(f"[yellow]![/yellow] metrics of {name} not read: {type(exc).__name__}")
        return
    values: Counter[str] = Counter()
    calls = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "paymq_payments_total":
                values[sample.labels["status"]] += int(sample.value)
            elif sample.name == "paymq_provider_call_seconds_count":
                calls += sample.value
            elif sample.name in ("paymq_retries_total", "paymq_dead_lettered_total"):
                values[sample.name] += int(sample.value)
    statuses = ", ".join(
        f"{status} {count}"
        for status, count in sorted(values.items())
        if not status.startswith("paymq_")
    )
    console.print(
        f"[green]✓[/green] metrics of {name} ({url}): payments {statuses}; "
        f"{int(calls)} provider calls, {values['paymq_retries_total']} retries, "
        f"{values['paymq_dead_lettered_total']} dead-lettered"
    )
