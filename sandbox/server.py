"""Run the sandbox: `serve` in the foreground until a signal, or `SandboxThread` for tests."""

import asyncio
import signal
import threading
from collections.abc import Callable
from types import TracebackType

from aiohttp import web

from sandbox.app import build_app
from sandbox.state import SandboxState

# In-flight requests get this long to finish at shutdown; injected delays end at once.
_SHUTDOWN_TIMEOUT_S = 2.0
_STARTUP_TIMEOUT_S = 10.0


async def start_runner(state: SandboxState, host: str, port: int) -> tuple[web.AppRunner, str]:
    """Listen on host:port (0 picks a free port); return the runner and the base URL."""
    # No access log: at 1,000 requests/s it would cost more CPU than the requests themselves.
    runner = web.AppRunner(build_app(state), access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_port = runner.addresses[0][1]
    url_host = f"[{host}]" if ":" in host else host
    return runner, f"http://{url_host}:{bound_port}"


def serve(
    host: str,
    port: int,
    latency_ms: int = 0,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM; call on_ready(base_url) once listening."""
    asyncio.run(_serve(host, port, latency_ms, on_ready))


async def _serve(
    host: str, port: int, latency_ms: int, on_ready: Callable[[str], None] | None
) -> None:
    state = SandboxState()
    state.latency_ms = latency_ms
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        runner, url = await start_runner(state, host, port)
        try:
            if on_ready is not None:
                on_ready(url)
            await stop.wait()
        finally:
            await runner.cleanup()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


class SandboxThread:
    """The sandbox on 127.0.0.1, a free port, in a background thread with its own event loop.

    >>> with SandboxThread() as sandbox:
    ...     requests.get(sandbox.url + "/health")
    """

    def __init__(self, latency_ms: int = 0) -> None:
        self._latency_ms = latency_ms
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._url: str | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the sandbox is not running; call start() first")
        return self._url

    def start(self) -> str:
        if self._thread is not None:
            raise RuntimeError("a SandboxThread can be started once")
        self._thread = threading.Thread(target=self._main, name="paymq-sandbox", daemon=True)
        self._thread.start()
        if not self._ready.wait(_STARTUP_TIMEOUT_S):
            raise RuntimeError("the sandbox did not start in time")
        if self._error is not None:
            self._thread.join()
            raise RuntimeError("the sandbox failed to start") from self._error
        return self.url

    def stop(self) -> None:
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None or not thread.is_alive():
            return
        if loop is not None and stop is not None:
            loop.call_soon_threadsafe(stop.set)
        thread.join()
        self._url = None

    def __enter__(self) -> "SandboxThread":
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _main(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        state = SandboxState()
        state.latency_ms = self._latency_ms
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            runner, self._url = await start_runner(state, "127.0.0.1", 0)
        except Exception as error:  # handed to start(), which raises it in the caller's thread
            self._error = error
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()
