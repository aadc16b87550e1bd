"""Publishing with confirms from ordinary (non-I/O) threads: each publish returns a Future.

The session runs in a daemon thread of its own; `publish_many` hands a whole batch to it in one
wake-up and the confirms come back pipelined, instead of one round trip per message.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future

from common.amqp.nodes import unreachable
from common.amqp.session import AmqpSession, SessionOptions
from common.envelope import OutboundMessage
from common.errors import BrokerUnavailable, PaymqError


class ThreadedPublisher:
    def __init__(self, options: SessionOptions) -> None:
        self._options = options
        self._connected = threading.Event()
        self._connected_since_ms: int | None = None
        self._session = AmqpSession(options, self)
        self._thread = threading.Thread(
            target=self._session.run, name=f"amqp-{options.name}", daemon=True
        )

    # SessionListener, on the I/O thread
    def session_ready(self) -> None:
        self._connected_since_ms = int(time.time() * 1000)
        self._connected.set()

    def session_lost(self, reason: str) -> None:
        self._connected_since_ms = None
        self._connected.clear()

    def start(self) -> None:
        """Start the I/O thread and wait for the first connection."""
        self._thread.start()
        if not self._connected.wait(self._options.connect_timeout_s + 1.0):
            self.close()
            detail = self._session.last_error or "no answer"
            raise BrokerUnavailable(unreachable(self._options.url, detail))

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def connected_since_ms(self) -> int | None:
        """When the current connection opened (ms since the epoch); None while there is none."""
        return self._connected_since_ms

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    def publish(self, message: OutboundMessage) -> Future[None]:
        return self.publish_many([message])[0]

    def publish_many(self, messages: Sequence[OutboundMessage]) -> list[Future[None]]:
        futures: list[Future[None]] = [Future() for _ in messages]

        def send() -> None:
            for message, future in zip(messages, futures, strict=True):
                self._session.publish(message, _resolver(future))

        self._session.call_threadsafe(send)
        return futures

    def close(self) -> None:
        if self._thread.is_alive():
            self._session.stop()
            self._thread.join(timeout=10)

    def __enter__(self) -> ThreadedPublisher:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _resolver(future: Future[None]) -> Callable[[PaymqError | None], None]:
    def resolve(error: PaymqError | None) -> None:
        if future.done():
            return
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)

    return resolve
