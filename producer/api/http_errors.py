"""The API's refusals as HTTP answers, for every route module: one shape,
`{"error": {"code", "message"}}` (app.py's handlers write it), the OpenAPI descriptions the
routes share, and a store that does not answer as a 503 to be repeated."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from fastapi import HTTPException

from common.errors import StoreUnavailable
from producer.api.schemas import ErrorOut

#: What every route that needs an API key may answer.
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "No API key, or an unknown one."},
    403: {"model": ErrorOut, "description": "The API key may not pay on this channel."},
}
CHALLENGE = {"WWW-Authenticate": "Bearer"}
RETRY = {"Retry-After": "1"}


def api_error(status: int, code: str, message: str, **headers: str) -> HTTPException:
    return HTTPException(status, detail={"code": code, "message": message}, headers=headers)


@contextlib.contextmanager
def store_errors() -> Iterator[None]:
    """A store that does not answer: 503, to be repeated."""
    try:
        yield
    except StoreUnavailable as exc:
        raise api_error(503, exc.code, str(exc), **RETRY) from exc
