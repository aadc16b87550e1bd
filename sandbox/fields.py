"""Typed readers for fields of a parsed JSON object; each raises a 400 ApiError naming the param.

JSON has no separate integer type in most clients, so the rules are explicit: an integer is a
JSON integer (not a float such as 10.0, not a boolean), and unknown fields are an error, so a
misspelt field fails loudly instead of being ignored.
"""

import json
from collections.abc import Mapping, Sequence

from sandbox.errors import invalid_request

JsonObject = dict[str, object]


def parse_json_object(raw: bytes) -> JsonObject:
    """Strict JSON: no NaN/Infinity, no duplicate keys, and the top level must be an object."""
    try:
        value = json.loads(raw, object_pairs_hook=_unique_keys, parse_constant=_no_constants)
    except (ValueError, RecursionError):
        # Not kept as the cause: a JSON error holds the whole body, card numbers and all.
        raise invalid_request("invalid_json", "The body is not valid JSON.") from None
    if not isinstance(value, dict):
        raise invalid_request("invalid_json", "The body must be a JSON object.")
    return value


def _unique_keys(pairs: Sequence[tuple[str, object]]) -> JsonObject:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key")
    return result


def _no_constants(name: str) -> object:
    raise ValueError(name)


def reject_unknown(body: Mapping[str, object], allowed: frozenset[str], prefix: str = "") -> None:
    for name in body:
        if name not in allowed:
            raise invalid_request(
                "parameter_unknown", f"Unknown parameter: {prefix}{name}.", prefix + name
            )


def required(body: Mapping[str, object], name: str, prefix: str = "") -> object:
    if name not in body:
        raise invalid_request(
            "parameter_missing", f"Missing required param: {prefix}{name}.", prefix + name
        )
    return body[name]


def string(value: object, param: str, *, max_len: int, min_len: int = 1) -> str:
    if not isinstance(value, str) or not min_len <= len(value) <= max_len:
        raise invalid_request(
            "parameter_invalid",
            f"{param} must be a string of {min_len} to {max_len} characters.",
            param,
        )
    return value


def integer(value: object, param: str, *, minimum: int, maximum: int) -> int:
    # bool is a subclass of int in Python; true must not be read as 1.
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise invalid_request(
            "parameter_invalid",
            f"{param} must be a JSON integer from {minimum} to {maximum}.",
            param,
        )
    return value


def number(value: object, param: str, *, minimum: float, maximum: float) -> float:
    if (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and minimum <= value <= maximum
    ):
        return float(value)
    raise invalid_request(
        "parameter_invalid", f"{param} must be a number from {minimum} to {maximum}.", param
    )


def json_object(value: object, param: str) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise invalid_request("parameter_invalid", f"{param} must be a JSON object.", param)
    return value


def metadata(value: object, param: str = "metadata") -> Mapping[str, str]:
    """At most 50 string pairs, keys up to 40 and values up to 500 characters (Stripe's limits)."""
    pairs = json_object(value, param)
    if len(pairs) > 50:
        raise invalid_request("parameter_invalid", f"{param} allows at most 50 keys.", param)
    result: dict[str, str] = {}
    for key, item in pairs.items():
        string(key, f"{param}.key", max_len=40)
        result[key] = string(item, f"{param}.{key}", max_len=500, min_len=0)
    return result
