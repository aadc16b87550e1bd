"""`paymq localstripe`: the localstripe Stripe emulator (PyPI), as paymq's tests and demo run it.

Two things differ from `localstripe --port N`:
- **State of its own.** localstripe keeps its state in /tmp/localstripe.pickle, shared by every
  instance on the host and rewritten after every POST, so two instances would read each other's
  payments. Here an instance keeps its state in memory, or in the file given by --state-file.
- **The Search API, for PaymentIntents.** localstripe has none; paymq's reconciler looks a
  PaymentIntent up by the payment id in its metadata with it. This adds
  `GET /v1/payment_intents/search` for the one query form paymq sends, `metadata['k']:'v'`,
  answered in Stripe's search_result shape. Any other query is a 400.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from localstripe.errors import UserError
from localstripe.resources import store
from localstripe.server import app

_SEARCH_PATH = "/v1/payment_intents/search"
_METADATA_QUERY = re.compile(r"^metadata\['([^'\\]+)'\]:'((?:[^'\\]|\\.)*)'$")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _search_answer(query: str, limit: int) -> dict[str, Any]:
    match = _METADATA_QUERY.match(query)
    if match is None:
        raise UserError(400, "this emulator searches metadata['key']:'value' only")
    key, value = match.group(1), re.sub(r"\\(.)", r"\1", match.group(2))
    intents = [
        item
        for name, item in store.items()
        if name.startswith("payment_intent:") and (item.metadata or {}).get(key) == value
    ]
    intents.sort(key=lambda intent: intent.created)
    return {
        "object": "search_result",
        "url": _SEARCH_PATH,
        "has_more": len(intents) > limit,
        "next_page": None,
        "data": [intent._export() for intent in intents[:limit]],
    }


@web.middleware
async def _search(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method != "GET" or request.path != _SEARCH_PATH:
        return await handler(request)
    limit = int(request.query.get("limit", "10"))
    return web.json_response(_search_answer(request.query.get("query", ""), limit))


def _keep_state(state_file: Path | None) -> None:
    def dump() -> None:
        if state_file is not None:
            temporary = state_file.with_suffix(".tmp")
            temporary.write_bytes(pickle.dumps(dict(store), protocol=pickle.HIGHEST_PROTOCOL))
            temporary.replace(state_file)

    if state_file is not None and state_file.exists():
        # Our own file, written by dump() above: trusted like the emulator's own pickle.
        store.update(pickle.loads(state_file.read_bytes()))  # noqa: S301
    store.dump_to_disk = dump  # an instance attribute: the shared /tmp file is never touched


def serve(host: str, port: int, state_file: Path | None) -> None:
    _keep_state(state_file)
    app.middlewares.append(_search)
    print(f"localstripe on http://{host}:{port}", flush=True)
    web.run_app(app, host=host, port=port, access_log=None, print=None)
