"""The HTTP payment API's app (FastAPI): taking payments, health, the error handlers, and the
reads (reads.py). Everything it needs is built at the entry point (producer/api/server.py) and
handed in (deps.py); the routes only translate between HTTP and the intake, the store's view of
a payment, and the readiness checks.

No `from __future__ import annotations` here: FastAPI reads the routes' annotations at run time,
and they name the local `caller` dependency."""

import contextlib
import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from opentelemetry import propagate
from opentelemetry.trace import SpanKind
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from common.errors import (
    BrokerUnavailable,
    ConfigurationError,
    MalformedMessage,
    PanInClear,
    PublishFailed,
    StoreUnavailable,
)
from common.redact import mask_pans, problems
from common.strictjson import check_strict_json
from common.tracing import tracer
from producer.api.bodylimit import BodyLimit
from producer.api.deps import ApiDeps
from producer.api.http_errors import AUTH_ERRORS, CHALLENGE, RETRY, api_error
from producer.api.intake import IdempotencyConflict
from producer.api.keys import ApiKey, ApiKeys
from producer.api.metrics import ApiMetrics, count_requests, serve_metrics
from producer.api.reads import add_read_routes
from producer.api.schemas import IDEMPOTENCY_KEY_PATTERN, Accepted, ErrorOut, PaymentIn

logger = logging.getLogger("paymq.api")
_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer pmq_...`")


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


def create_app(deps: ApiDeps) -> FastAPI:
    app = FastAPI(
        title="paymq payment API",
        version="1",
        description="Pay, and ask for a payment's result, over HTTP. Payments are signed and "
        "published to the same workers as AMQP producers use; see docs/api.md.",
    )
    _add_error_handlers(app)
    api_metrics = ApiMetrics(deps.metrics)
    # Before the counters are added, so that they are outside it and count its 413s.
    app.add_middleware(BodyLimit, max_bytes=deps.max_body_bytes)
    count_requests(app, api_metrics)
    caller = _caller(deps.keys)
    _add_payment_routes(app, deps, caller, api_metrics)
    add_read_routes(app, deps, caller)
    _add_health_routes(app, deps)
    serve_metrics(app, deps.metrics)
    return app


async def _strict_body(request: Request) -> None:
    """The body as the workers parse it (common/strictjson.py): duplicate keys, NaN and
    floats refused before the model sees the last of two values; then the model in JSON mode,
    as workers validate, so an integer amount above 2^53 - 1 is refused here too."""
    raw = await request.body()
    # Refusals here keep no cause: their text, or a validation error's, may quote a card number
    # the request carried (the answer's copy is masked).
    try:
        check_strict_json(raw)
        PaymentIn.model_validate_json(raw)
    except MalformedMessage as exc:
        raise api_error(422, "invalid_request", mask_pans(str(exc))) from None
    except ValidationError as exc:
        found = problems(exc.errors(include_url=False, include_input=False))
        raise api_error(422, "invalid_request", found) from None


@contextlib.contextmanager
def _intake_errors() -> Iterator[None]:
    """The intake's refusals as HTTP errors. Those whose text is masked keep no cause: it may
    quote a card number the request carried."""
    try:
        yield
    except IdempotencyConflict as exc:
        raise api_error(409, exc.code, mask_pans(str(exc))) from None
    except PanInClear as exc:
        raise api_error(422, exc.code, str(exc)) from exc
    except ValidationError as exc:
        found = problems(exc.errors(include_url=False, include_input=False))
        raise api_error(422, "invalid_request", found) from None
    except ValueError as exc:
        raise api_error(422, "invalid_request", mask_pans(str(exc))) from None
    except (BrokerUnavailable, PublishFailed, StoreUnavailable) as exc:
        raise api_error(503, exc.code, f"{exc}; repeat the request", **RETRY) from exc
    except ConfigurationError as exc:  # the gateway key retired: nothing was signed
        logger.error("payment refused: %s", exc)
        message = "the API cannot sign payments until an operator fixes its signing key"
        raise api_error(503, exc.code, message) from exc


def _add_error_handlers(app: FastAPI) -> None:
    """Every error as {"error": {"code", "message"}}, the routing's own 404 and 405 included."""

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail: Any = exc.detail
        if not isinstance(detail, dict):
            detail = {"code": _HTTP_CODES.get(exc.status_code, "http_error"), "message": detail}
        return JSONResponse({"error": detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            {"error": {"code": "invalid_request", "message": problems(exc.errors())}},
            status_code=422,
        )


def _caller(keys: Callable[[], ApiKeys]) -> Callable[..., ApiKey]:
    def caller(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> ApiKey:
        key = keys().authenticate(credentials.credentials) if credentials else None
        if key is None:
            raise api_error(401, "unauthorized", "a valid API key is required", **CHALLENGE)
        return key

    return caller


def _add_payment_routes(
    app: FastAPI, deps: ApiDeps, caller: Callable[..., ApiKey], metrics: ApiMetrics
) -> None:
    @app.post(
        "/payments",
        status_code=202,
        response_model=Accepted,
        responses={
            **AUTH_ERRORS,
            409: {"model": ErrorOut, "description": "Idempotency-Key used with another body."},
            413: {"model": ErrorOut, "description": "The body is over PAYMQ_MAX_BODY_BYTES."},
            422: {"model": ErrorOut, "description": "The body or a header is not valid."},
            503: {
                "model": ErrorOut,
                "description": "Broker or store down: repeat the request (or the API's signing "
                "key is retired: an operator must act).",
            },
        },
    )
    def create_payment(
        body: PaymentIn,
        request: Request,
        response: Response,
        key: Annotated[ApiKey, Depends(caller)],
        _strict: Annotated[None, Depends(_strict_body)],
        idempotency_key: Annotated[
            str, Header(alias="Idempotency-Key", pattern=IDEMPOTENCY_KEY_PATTERN)
        ],
    ) -> Accepted:
        """Take a payment: 202 with its id once it is signed and confirmed by the broker. The
        same Idempotency-Key with the same body answers the same payment."""
        if body.channel not in key.channels:
            raise api_error(403, "channel_not_allowed", f"this key may not pay on {body.channel}")
        # A caller's traceparent header continues into the request's "create" span.
        context = propagate.extract(request.headers)
        with (
            _intake_errors(),
            tracer.start_as_current_span("POST /payments", context=context, kind=SpanKind.SERVER),
        ):
            taken = deps.intake.take(key, idempotency_key, body)
        submission = taken.submission
        metrics.accepted.labels(submission.channel, str(taken.replayed).lower()).inc()
        logger.info(
            "payment %s accepted for key %s%s",
            submission.payment_id,
            key.id,
            " (replayed)" if taken.replayed else "",
            extra={
                "payment_id": submission.payment_id,
                "message_id": submission.message.message_id,
            },
        )
        url = f"/payments/{submission.payment_id}"
        response.headers["Location"] = url
        return Accepted(
            payment_id=uuid.UUID(submission.payment_id),
            status_url=url,
            replayed=taken.replayed,
        )


def _add_health_routes(app: FastAPI, deps: ApiDeps) -> None:
    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """The process answers."""
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"description": "A dependency is down."}})
    def readyz() -> JSONResponse:
        """The broker and the store answer."""
        checks = dict(deps.readiness())
        ready = all(state == "ok" for state in checks.values())
        return JSONResponse(checks, status_code=200 if ready else 503)
