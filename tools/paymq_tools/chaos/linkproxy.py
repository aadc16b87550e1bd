"""A TCP fault proxy: one listening port on 127.0.0.1 in front of one upstream (the broker, the
database), whose behaviour can be switched at any time, from any thread.

    pass                 forward both ways
    blackhole            a partition: nothing is forwarded either way and nothing is closed;
                         new connections are accepted and get nothing (no upstream connection)
    reset-all            RST every connection (SO_LINGER 0, then close), and each new one at once
    reset-after-bytes    every connection, existing and new, is reset after N more bytes (both
                         directions counted), cutting the chunk in flight: it dies mid-frame

Healing a blackhole forwards again, as a network that comes back does: what each side sent
meanwhile (held by the proxy's read buffers and then the kernels', as TCP would hold it for
retransmission) arrives late, and a side that gave up meanwhile, such as a broker whose
heartbeat timeout closed its end, shows its close only then. A connection accepted
during the partition connects upstream only once it heals, like a SYN retransmitted until it
gets through. Nothing is reset by the healing itself.

A reset passes on: when one side resets its connection, the proxy resets the other.

    with LinkProxy("127.0.0.1", broker_port, name="broker") as link:
        worker_url = link.route(broker_url)
        link.reset_after(4096)
        ...
        link.pass_through()
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from paymq_tools.processes import free_port

CHUNK_BYTES = 16 * 1024
#: A cut chunk's first part is left this long to reach its peer before the reset, so the peer
#: really reads half a frame (a RST can drop data still unread at the receiver).
CUT_PAUSE_S = 0.02
SWITCH_TIMEOUT_S = 10.0
_RST_ON_CLOSE = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST


class Mode(StrEnum):
    PASS = "pass"  # noqa: S105 - the name of a mode, not a password
    BLACKHOLE = "blackhole"
    RESET_ALL = "reset-all"
    RESET_AFTER_BYTES = "reset-after-bytes"


@dataclass(frozen=True)
class LinkStats:
    accepted: int
    #: Connections the proxy reset by its mode (reset-all, reset-after-bytes).
    resets: int
    #: Of those, resets that cut a chunk in two: the peer got part of what was sent.
    cut_mid_chunk: int
    #: Resets passed on: the other side reset its end, or the upstream refused to connect.
    passed_on: int
    forwarded_bytes: int


@dataclass(eq=False)
class _Connection:
    client: asyncio.StreamWriter
    #: Bytes left before the reset (reset-after-bytes), else None.
    budget: int | None
    done: bool = False
    writers: list[asyncio.StreamWriter] = field(default_factory=list)


class LinkProxy:
    def __init__(self, upstream_host: str, upstream_port: int, *, name: str = "link") -> None:
        self.name = name
        self.port = free_port()
        self._upstream = (upstream_host, upstream_port)
        self._mode = Mode.PASS
        self._after_bytes: int | None = None
        self._connections: set[_Connection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._accepted = self._resets = self._cut = self._passed_on = self._forwarded = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"link-{name}")
        self._thread.daemon = True
        self._server: asyncio.Server | None = None
        self._open = asyncio.Event()  # set unless partitioned; used on the loop only

    def __enter__(self) -> LinkProxy:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- any thread ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()
        self._call(self._listen())

    def close(self) -> None:
        """Stop listening and reset every connection; safe to call twice, or unstarted."""
        if not self._thread.is_alive():
            if not self._loop.is_closed() and self._thread.ident is None:
                self._loop.close()
            return
        with contextlib.suppress(Exception):
            self._call(self._shut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=SWITCH_TIMEOUT_S)
        if not self._thread.is_alive():
            self._loop.close()

    @property
    def mode(self) -> Mode:
        return self._mode

    def route(self, url: str) -> str:
        """`url` (amqp://, postgresql://...) with this proxy as its host and port."""
        parts = urlsplit(url)
        user = parts.netloc.rpartition("@")[0]
        netloc = f"{user}@" if user else ""
        return urlunsplit(parts._replace(netloc=f"{netloc}127.0.0.1:{self.port}"))

    def pass_through(self) -> None:
        self._call(self._switch(Mode.PASS))

    def blackhole(self) -> None:
        self._call(self._switch(Mode.BLACKHOLE))

    def reset_all(self) -> None:
        self._call(self._switch(Mode.RESET_ALL))

    def reset_after(self, n_bytes: int) -> None:
        if n_bytes < 1:
            raise ValueError("reset_after needs at least one byte")
        self._call(self._switch(Mode.RESET_AFTER_BYTES, n_bytes))

    def stats(self) -> LinkStats:
        return LinkStats(self._accepted, self._resets, self._cut, self._passed_on, self._forwarded)

    def _call(self, work: Coroutine[Any, Any, None]) -> None:
        """Run a coroutine on the proxy's loop and wait until it is done."""
        asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout=SWITCH_TIMEOUT_S)

    # --- the proxy's loop ---------------------------------------------------------------------

    async def _listen(self) -> None:
        self._open.set()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _shut(self) -> None:
        if self._server is not None:
            self._server.close()
        self._open.set()
        for connection in list(self._connections):
            self._reset(connection, counted=False)
        if self._tasks:  # reset connections end by themselves, held ones included
            await asyncio.wait(self._tasks, timeout=SWITCH_TIMEOUT_S / 2)

    async def _switch(self, mode: Mode, after_bytes: int | None = None) -> None:
        self._mode, self._after_bytes = mode, after_bytes
        for connection in self._connections:
            connection.budget = after_bytes
        if mode is Mode.BLACKHOLE:
            self._open.clear()
        else:
            self._open.set()
        if mode is Mode.RESET_ALL:
            for connection in list(self._connections):
                self._reset(connection)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._accepted += 1
        connection = _Connection(client=writer, budget=self._after_bytes)
        connection.writers.append(writer)
        self._connections.add(connection)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._serve(connection, reader)
        finally:
            self._connections.discard(connection)
            if task is not None:
                self._tasks.discard(task)
            self._finish(connection)

    async def _serve(self, connection: _Connection, client: asyncio.StreamReader) -> None:
        if self._mode is Mode.RESET_ALL:
            self._reset(connection)
            return
        await self._open.wait()  # accepted during a partition: no further until it heals
        if connection.done:
            return
        try:
            upstream, writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            self._reset(connection, by_peer=True)  # a refused connection, as a router passes it
            return
        if connection.done:  # reset while connecting
            _send_reset(writer)
            return
        connection.writers.append(writer)
        await asyncio.gather(
            self._pipe(connection, client, writer),
            self._pipe(connection, upstream, connection.client),
        )

    async def _pipe(
        self, connection: _Connection, source: asyncio.StreamReader, sink: asyncio.StreamWriter
    ) -> None:
        while not connection.done:
            try:
                chunk = await source.read(CHUNK_BYTES)
            except ConnectionError:
                chunk = None  # the peer reset its end
            await self._open.wait()  # a partition holds what was read, and closes nothing
            if connection.done:
                return
            if chunk is None:
                self._reset(connection, by_peer=True)
                return
            if not chunk:  # an orderly close: pass it on
                self._finish(connection)
                return
            if not await self._forward(connection, chunk, sink):
                return

    async def _forward(
        self, connection: _Connection, chunk: bytes, sink: asyncio.StreamWriter
    ) -> bool:
        """Forward `chunk` within the connection's budget; False once the connection is gone."""
        budget = connection.budget
        if budget == 0:  # the other direction spent the budget: its reset is on its way
            return False
        cut = budget is not None and len(chunk) >= budget
        part = chunk[:budget] if cut else chunk
        if budget is not None:
            connection.budget = budget - len(part)
        try:
            self._forwarded += len(part)
            sink.write(part)
            await sink.drain()
            if cut:
                await asyncio.sleep(CUT_PAUSE_S)
        except ConnectionError:
            self._reset(connection, by_peer=True)
            return False
        if cut:
            self._reset(connection, cut_mid_chunk=len(part) < len(chunk))
            return False
        return True

    def _reset(
        self,
        connection: _Connection,
        *,
        counted: bool = True,
        by_peer: bool = False,
        cut_mid_chunk: bool = False,
    ) -> None:
        if connection.done:
            return
        connection.done = True
        for writer in connection.writers:
            _send_reset(writer)
        if not counted:
            return
        if by_peer:
            self._passed_on += 1
        else:
            self._resets += 1
            self._cut += cut_mid_chunk

    def _finish(self, connection: _Connection) -> None:
        if connection.done:
            return
        connection.done = True
        for writer in connection.writers:
            writer.close()


def _send_reset(writer: asyncio.StreamWriter) -> None:
    """Close with a RST, not a FIN: SO_LINGER on with a zero timeout, then close."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RST_ON_CLOSE)
    writer.transport.abort()
