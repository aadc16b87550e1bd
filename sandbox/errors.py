"""Every error answer the sandbox gives, as one exception type with an HTTP status.

Body shape: ``{"error": {"type", "code", "message", "param"?, "decline_code"?}}``.

    ApiError
    ├── 400 invalid_request_error   invalid_json, idempotency_key_missing, idempotency_key_invalid,
    │                               parameter_missing, parameter_invalid, parameter_unknown,
    │                               invalid_number, invalid_token, invalid_address
    ├── 402 card_error              card_declined (+ decline_code)        final: stored
    ├── 402 payout_error            payout_declined (+ decline_code)      final: stored
    ├── 404 invalid_request_error   resource_missing, not_found
    ├── 405 invalid_request_error   method_not_allowed
    ├── 409 idempotency_error       request_in_progress
    ├── 413 invalid_request_error   request_too_large
    ├── 422 idempotency_error       idempotency_key_reused
    ├── 429 rate_limit_error        rate_limited (injected, with Retry-After)
    └── 5xx api_error               processing_error (503), injected_error, internal_error

Messages name the parameter, never its value: a card number must not leak into an answer.
"""

from sandbox.replies import Reply, json_reply


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        error_type: str,
        code: str,
        message: str,
        *,
        param: str | None = None,
        decline_code: str | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.code = code
        self.message = message
        self.param = param
        self.decline_code = decline_code
        self.headers = headers

    def reply(self) -> Reply:
        error: dict[str, str] = {"type": self.error_type, "code": self.code}
        error["message"] = self.message
        if self.param is not None:
            error["param"] = self.param
        if self.decline_code is not None:
            error["decline_code"] = self.decline_code
        return json_reply(self.status, {"error": error}, self.headers)


def invalid_request(code: str, message: str, param: str | None = None) -> ApiError:
    return ApiError(400, "invalid_request_error", code, message, param=param)


def not_found(code: str, message: str) -> ApiError:
    return ApiError(404, "invalid_request_error", code, message)


def idempotency_conflict(status: int, code: str, message: str) -> ApiError:
    return ApiError(status, "idempotency_error", code, message)


def card_declined(decline_code: str) -> ApiError:
    return ApiError(
        402, "card_error", "card_declined", "The card was declined.", decline_code=decline_code
    )


def payout_declined(decline_code: str) -> ApiError:
    return ApiError(
        402,
        "payout_error",
        "payout_declined",
        "The payout was declined.",
        decline_code=decline_code,
    )


def processing_error() -> ApiError:
    return ApiError(
        503, "api_error", "processing_error", "The provider failed; no money moved. Retry."
    )


def injected_error(status: int) -> ApiError:
    return ApiError(status, "api_error", "injected_error", "Injected fault.")


def rate_limited(retry_after_s: int) -> ApiError:
    return ApiError(
        429,
        "rate_limit_error",
        "rate_limited",
        "Too many requests.",
        headers=(("Retry-After", str(retry_after_s)),),
    )
