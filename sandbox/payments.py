"""The HTTP shell around creating a charge or payout.

Order, for every POST /v1/charges and /v1/payouts:
1. At arrival: check the Idempotency-Key, parse the JSON, claim the key (or find the stored
   answer, or a 422/409 conflict). Claiming before the latency is what lets a concurrent
   duplicate see "request in progress".
2. Sleep the configured latency.
3. Validate the body (a 400 releases the claim).
4. Take the first matching fault rule, if any (a body naming a scenario, scenarios.py, adds
   its rule first). Before-effect faults answer without touching money; after-effect faults
   let the decision happen (effect recorded, answer stored) and then spoil the delivery of
   the answer.
Replays go through 2 and 4 as well: a flaky network does not care that the answer was stored.
"""

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from aiohttp import web

from sandbox.errors import ApiError, injected_error, rate_limited
from sandbox.faults import FaultAction, FaultRule
from sandbox.fields import parse_json_object
from sandbox.idempotency import Claim, Replay, checked_key
from sandbox.replies import Reply
from sandbox.responses import pause, to_response
from sandbox.state import SandboxState

RequestT = TypeVar("RequestT")
# SO_LINGER on, 0 s: close() then sends RST, so the client sees a reset, not a clean EOF.
_LINGER_RESET = struct.pack("ii", 1, 0)


@dataclass(frozen=True, slots=True)
class PaymentEndpoint(Generic[RequestT]):
    path: str
    parse: Callable[[Mapping[str, object]], RequestT]
    execute: Callable[[RequestT, Claim], Reply]


class PaymentHandler(Generic[RequestT]):
    def __init__(
        self, state: SandboxState, endpoint: PaymentEndpoint[RequestT], closing: asyncio.Event
    ) -> None:
        self._state = state
        self._endpoint = endpoint
        # Set at shutdown, so injected delays end at once instead of holding the server open.
        self._closing = closing

    async def handle(self, request: web.Request) -> web.StreamResponse:
        state = self._state
        latency_ms = state.latency_ms
        try:
            key = checked_key(request.headers.get("Idempotency-Key"))
            body = parse_json_object(await request.read())
            admission = state.idempotency.begin(self._endpoint.path, key, state.fingerprint(body))
        except ApiError as error:
            await pause(latency_ms)
            return to_response(error.reply())
        if isinstance(admission, Replay):
            await pause(latency_ms)
            return await self._replay(request, body, admission.reply)
        with admission:  # released on every way out unless the decision settled it
            await pause(latency_ms)
            return await self._process(request, body, admission)

    async def _process(
        self, request: web.Request, body: Mapping[str, object], claim: Claim
    ) -> web.StreamResponse:
        try:
            parsed = self._endpoint.parse(body)
        except ApiError as error:
            return to_response(error.reply())
        fault = self._take_fault(body)
        if fault is not None and fault.action.before_effect:
            return _before_effect(request, fault)
        reply = self._endpoint.execute(parsed, claim)
        return await self._after_effect(request, fault, reply, replayed=False)

    async def _replay(
        self, request: web.Request, body: Mapping[str, object], reply: Reply
    ) -> web.StreamResponse:
        fault = self._take_fault(body)
        if fault is not None and fault.action.before_effect:
            return _before_effect(request, fault)
        return await self._after_effect(request, fault, reply, replayed=True)

    def _take_fault(self, body: Mapping[str, object]) -> FaultRule | None:
        return self._state.take_fault(self._endpoint.path, body)

    async def _after_effect(
        self, request: web.Request, fault: FaultRule | None, reply: Reply, *, replayed: bool
    ) -> web.StreamResponse:
        if fault is None:
            return to_response(reply, replayed=replayed)
        if fault.action is FaultAction.ERROR_AFTER_EFFECT:
            return to_response(injected_error(fault.status).reply())
        if fault.action is FaultAction.RESET_AFTER_EFFECT:
            return _abort(request)
        await self._hold(fault.delay_s)
        return to_response(reply, replayed=replayed)

    async def _hold(self, delay_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), delay_s)


def _before_effect(request: web.Request, fault: FaultRule) -> web.StreamResponse:
    if fault.action is FaultAction.RESET_BEFORE_EFFECT:
        return _abort(request)
    if fault.action is FaultAction.RATE_LIMIT:
        return to_response(rate_limited(fault.retry_after_s).reply())
    return to_response(injected_error(fault.status).reply())


def _abort(request: web.Request) -> web.StreamResponse:
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        transport.abort()
    # Never delivered: aiohttp's write fails on the aborted transport and is taken as a client
    # disconnect, without logging.
    return web.Response(status=500)
