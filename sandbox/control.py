"""The control API under /_sandbox/: reset, latency and fault rules. Not part of any provider."""

from aiohttp import web

from sandbox import fields
from sandbox.responses import json_response
from sandbox.state import SandboxState

MAX_LATENCY_MS = 600_000
_CONFIG_FIELDS = frozenset({"latency_ms"})


class Control:
    def __init__(self, state: SandboxState) -> None:
        self._state = state

    async def reset(self, _request: web.Request) -> web.Response:
        self._state.reset()
        return json_response(200, {"status": "reset"})

    async def get_config(self, _request: web.Request) -> web.Response:
        return json_response(200, self._config())

    async def put_config(self, request: web.Request) -> web.Response:
        body = fields.parse_json_object(await request.read())
        fields.reject_unknown(body, _CONFIG_FIELDS)
        self._state.latency_ms = fields.integer(
            fields.required(body, "latency_ms"), "latency_ms", minimum=0, maximum=MAX_LATENCY_MS
        )
        return json_response(200, self._config())

    async def add_fault(self, request: web.Request) -> web.Response:
        rule = self._state.add_fault(fields.parse_json_object(await request.read()))
        return json_response(201, rule.as_json())

    async def list_faults(self, _request: web.Request) -> web.Response:
        rules = [rule.as_json() for rule in self._state.faults.rules()]
        return json_response(200, {"faults": rules, "count": len(rules)})

    async def clear_faults(self, _request: web.Request) -> web.Response:
        self._state.faults.clear()
        return json_response(200, {"faults": [], "count": 0})

    def _config(self) -> dict[str, object]:
        return {"latency_ms": self._state.latency_ms}
