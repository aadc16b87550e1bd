"""From a `Reply` to an aiohttp response, and the injected latency: the edge of the HTTP shell."""

import asyncio

from aiohttp import web

from sandbox.replies import Reply, json_reply

_JSON = "application/json"


async def pause(latency_ms: int) -> None:
    # asyncio.sleep holds no thread: a thousand requests waiting 50 ms cost a thousand timers.
    if latency_ms > 0:
        await asyncio.sleep(latency_ms / 1000)


def to_response(reply: Reply, *, replayed: bool = False) -> web.Response:
    headers = {"Content-Type": _JSON}
    headers.update(reply.headers)
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return web.Response(status=reply.status, body=reply.body, headers=headers)


def json_response(status: int, payload: object) -> web.Response:
    return to_response(json_reply(status, payload))
