"""Strict JSON: the checks pydantic's parser does not make.

pydantic keeps the last of two duplicate keys and can be told to accept NaN; a payment must never
mean one thing to us and another to the producer's parser. This pass runs on the exact verified
bytes before the models see them, and refuses:

- bodies larger than the configured limit (checked on the length, before any parsing),
- bytes that are not UTF-8, and JSON that is not an object,
- duplicate keys at any depth,
- NaN, Infinity and -Infinity,
- any floating-point number: no field of the contract carries one, and amounts are integers,
- nesting deeper than MAX_DEPTH (the contract nests 3 deep): counted here, not left to the
  interpreter's recursion limit, which a library may raise for the whole process.
"""

from __future__ import annotations

import json
import re
from typing import Any, NoReturn

from common.errors import BodyTooLarge, MalformedMessage, UnsupportedContentType

JSON_CONTENT_TYPE = "application/json"
#: Deepest nesting of arrays and objects accepted.
MAX_DEPTH = 32
#: A JSON string (skipped whole) or one bracket.
_STRUCTURE = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def check_size(body: bytes, max_body_bytes: int) -> None:
    if len(body) > max_body_bytes:
        raise BodyTooLarge(f"body is {len(body)} bytes; the limit is {max_body_bytes}")


def check_content_type(content_type: str | None) -> None:
    """Accept `application/json`, optionally with `charset=utf-8`."""
    if content_type is None:
        raise UnsupportedContentType("content type is missing; expected application/json")
    media_type, _, params = content_type.partition(";")
    charset = params.strip().lower()
    if media_type.strip().lower() != JSON_CONTENT_TYPE or charset not in ("", "charset=utf-8"):
        raise UnsupportedContentType(f"content type {content_type!r}; expected application/json")


#: Content encodings that leave the body as it is ("utf-8": what some clients put there for
#: the charset).
_PLAIN_ENCODINGS = frozenset({"", "identity", "utf-8", "utf8"})


def check_content_encoding(content_encoding: str | None) -> None:
    """Bodies are plain UTF-8 JSON: an encoding (gzip, ...) the signed bytes would have to be
    decoded from is refused, not ignored."""
    if content_encoding is not None and content_encoding.lower() not in _PLAIN_ENCODINGS:
        raise UnsupportedContentType(
            f"content encoding {content_encoding[:40]!r}; bodies are sent unencoded"
        )


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise MalformedMessage(f"duplicate JSON key {key!r}")
        obj[key] = value
    return obj


def _reject_constant(name: str) -> NoReturn:
    raise MalformedMessage(f"{name} is not allowed in JSON")


def _reject_float(text: str) -> NoReturn:
    raise MalformedMessage(f"floating-point number {text} is not allowed; amounts are integers")


def _check_depth(text: str) -> None:
    # Fewer brackets than the limit cannot nest deeper: the common case costs two counts.
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return
    depth = 0
    for match in _STRUCTURE.finditer(text):
        bracket = match.group()
        if bracket in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise MalformedMessage(f"body is nested more than {MAX_DEPTH} deep")
        elif bracket in "]}":
            depth -= 1


def check_strict_json(body: bytes) -> dict[str, Any]:
    """Raise MalformedMessage unless `body` is a strict JSON object (see module docstring);
    the object, parsed, for a caller that looks into it."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        # Not kept as the cause (nor the JSON error's below): each holds the whole body, which
        # may carry a card number in clear.
        raise MalformedMessage("body is not valid UTF-8") from None
    _check_depth(text)
    try:
        value = json.loads(
            text,
            object_pairs_hook=_reject_duplicates,
            parse_constant=_reject_constant,
            parse_float=_reject_float,
        )
    except json.JSONDecodeError as exc:
        raise MalformedMessage(f"body is not valid JSON: {exc.msg} at position {exc.pos}") from None
    except ValueError as exc:
        # int() refuses integer literals past Python's digit limit: no amount is that long.
        raise MalformedMessage("body holds an integer too long to be an amount") from exc
    except RecursionError as exc:
        raise MalformedMessage("body is nested too deeply") from exc
    if not isinstance(value, dict):
        raise MalformedMessage("body must be a JSON object")
    return value
