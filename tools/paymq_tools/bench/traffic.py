"""What `paymq bench` sends and receives: payments published flat out or at a steady pace, and
the result events collected on a connection of their own, with the time each arrived.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

from common.amqp.admin import BrokerAdmin
from common.envelope import OutboundMessage
from common.settings import Settings
from common.subscriber import ResultStream, ResultVerifier
from paymq_tools.errors import ToolError
from producer.producer import Producer

CHUNK = 250


class BenchFailed(ToolError):
    code = "bench_failed"


class Collector(threading.Thread):
    """Receives result events on its own connection, from the bench topology's durable
    notifications queue (the subscribers' queue, as in production).

    With a verifier it is a full subscriber (signature, strict parsing, the model); without,
    it only reads each event's request id and status, so the figures measure paymq itself
    rather than the cost of one particular subscriber.
    """

    def __init__(self, settings: Settings, verifier: ResultVerifier | None, expected: int) -> None:
        super().__init__(name="bench-collector", daemon=True)
        self._settings = settings
        self._verifier = verifier
        self._expected = expected
        self.ready = threading.Event()
        self.done = threading.Event()
        self.received_at: dict[str, float] = {}
        self.statuses: dict[str, str] = {}
        self.untrusted = 0
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            for message_id, status in self._events():
                self.received_at.setdefault(message_id, time.monotonic())
                self.statuses[message_id] = status
                if len(self.received_at) >= self._expected:
                    return
        except Exception as exc:  # reported by the main thread
            self.error = exc
            self.ready.set()

    def _events(self) -> Iterator[tuple[str, str]]:
        settings = self._settings
        if self._verifier is not None:
            with ResultStream(
                settings.broker.amqp_url, settings.broker.topology(), self._verifier, durable=True
            ) as stream:
                self.ready.set()
                for event in stream.events(inactivity_timeout_s=0.5):
                    if self.done.is_set():
                        return
                    if event is not None and event.result is None:
                        self.untrusted += 1
                    elif event is not None and event.result is not None:
                        yield event.result.request_message_id or "", event.result.status.value
            return
        with BrokerAdmin(settings.broker.amqp_url, name="paymq-bench-collector") as admin:
            self.ready.set()
            queue = settings.broker.topology().notifications_queue
            for message in admin.consume(queue, inactivity_timeout_s=0.5):
                if self.done.is_set():
                    return
                if message is not None:
                    event = json.loads(message.body)
                    yield str(event["request_message_id"]), str(event["status"])


def publish_flat_out(
    producer: Producer, messages: list[OutboundMessage], published_at: dict[str, float]
) -> None:
    """As fast as confirms allow, in pipelined chunks."""
    for offset in range(0, len(messages), CHUNK):
        batch = messages[offset : offset + CHUNK]
        now = time.monotonic()
        for message in batch:
            published_at[message.message_id] = now
        failed = [o for o in producer.publish_many(batch) if not o.ok]
        if failed:
            raise BenchFailed(f"{len(failed)} publishes failed: {failed[0].error}")


def publish_paced(
    producer: Producer,
    messages: list[OutboundMessage],
    rate_per_s: int,
    published_at: dict[str, float],
) -> None:
    """One message every 1/rate seconds, confirms checked at the end: latency below capacity."""
    start = time.monotonic()
    futures = []
    for index, message in enumerate(messages):
        delay_s = start + index / rate_per_s - time.monotonic()
        if delay_s > 0:
            time.sleep(delay_s)
        published_at[message.message_id] = time.monotonic()
        futures.extend(producer.submit([message]))
    errors = [f.exception(timeout=60) for f in futures]
    failed = [e for e in errors if e is not None]
    if failed:
        raise BenchFailed(f"{len(failed)} publishes failed: {failed[0]}")
