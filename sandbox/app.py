"""The aiohttp application: routes, lookups, and one middleware that makes every error JSON."""

import asyncio
import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from sandbox.control import Control
from sandbox.errors import ApiError, not_found
from sandbox.payments import PaymentEndpoint, PaymentHandler
from sandbox.responses import json_response, pause, to_response
from sandbox.state import SandboxState
from sandbox.validation import parse_charge, parse_payout

logger = logging.getLogger(__name__)

# Payment bodies are a few hundred bytes; anything near this is a client bug.
_MAX_BODY_BYTES = 64 * 1024
_HTTP_ERROR_CODES = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}


def build_app(state: SandboxState) -> web.Application:
    app = web.Application(middlewares=[_json_errors], client_max_size=_MAX_BODY_BYTES)
    closing = asyncio.Event()

    async def set_closing(_app: web.Application) -> None:
        closing.set()

    app.on_shutdown.append(set_closing)
    charges = PaymentHandler(
        state, PaymentEndpoint("/v1/charges", parse_charge, state.charge), closing
    )
    payouts = PaymentHandler(
        state, PaymentEndpoint("/v1/payouts", parse_payout, state.payout), closing
    )
    lookups = Lookups(state)
    control = Control(state)
    app.router.add_get("/health", health)
    app.router.add_post("/v1/charges", charges.handle)
    app.router.add_get("/v1/charges", lookups.list_charges)
    app.router.add_get("/v1/charges/{id}", lookups.get_charge)
    app.router.add_post("/v1/payouts", payouts.handle)
    app.router.add_get("/v1/payouts", lookups.list_payouts)
    app.router.add_get("/v1/payouts/{id}", lookups.get_payout)
    app.router.add_get("/v1/effects", lookups.list_effects)
    app.router.add_post("/_sandbox/reset", control.reset)
    app.router.add_get("/_sandbox/config", control.get_config)
    app.router.add_put("/_sandbox/config", control.put_config)
    app.router.add_post("/_sandbox/faults", control.add_fault)
    app.router.add_get("/_sandbox/faults", control.list_faults)
    app.router.add_delete("/_sandbox/faults", control.clear_faults)
    return app


async def health(_request: web.Request) -> web.Response:
    return json_response(200, {"status": "ok"})


class Lookups:
    """Reads for resolving unknown outcomes: by id, by the caller's reference, or the ledger."""

    def __init__(self, state: SandboxState) -> None:
        self._state = state

    async def get_charge(self, request: web.Request) -> web.Response:
        await pause(self._state.latency_ms)
        charge = self._state.ledger.charge(request.match_info["id"])
        if charge is None:
            raise not_found("resource_missing", "No such charge.")
        return json_response(200, charge.as_object())

    async def get_payout(self, request: web.Request) -> web.Response:
        await pause(self._state.latency_ms)
        payout = self._state.ledger.payout(request.match_info["id"])
        if payout is None:
            raise not_found("resource_missing", "No such payout.")
        return json_response(200, payout.as_object(self._state.now()))

    async def list_charges(self, request: web.Request) -> web.Response:
        await pause(self._state.latency_ms)
        charges = self._state.ledger.charges(request.query.get("reference"))
        return _listing("data", [charge.as_object() for charge in charges])

    async def list_payouts(self, request: web.Request) -> web.Response:
        await pause(self._state.latency_ms)
        payouts = self._state.ledger.payouts(request.query.get("reference"))
        now = self._state.now()
        return _listing("data", [payout.as_object(now) for payout in payouts])

    async def list_effects(self, request: web.Request) -> web.Response:
        await pause(self._state.latency_ms)
        effects = self._state.ledger.effects(request.query.get("reference"))
        return _listing("effects", [effect.as_effect() for effect in effects])


def _listing(name: str, items: list[dict[str, object]]) -> web.Response:
    return json_response(200, {name: items, "count": len(items)})


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as error:
        return to_response(error.reply())
    except web.HTTPException as error:
        if error.status < 400:
            raise
        code = _HTTP_ERROR_CODES.get(error.status, "http_error")
        reply = ApiError(error.status, "invalid_request_error", code, error.reason).reply()
        response = to_response(reply)
        if "Allow" in error.headers:
            response.headers["Allow"] = error.headers["Allow"]
        return response
    except Exception:
        # The body is never logged: it may hold card data.
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return to_response(ApiError(500, "api_error", "internal_error", "Internal error.").reply())
