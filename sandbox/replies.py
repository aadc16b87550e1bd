"""A finished answer as bytes: what the idempotency store keeps and what a replay sends back.

Encoding once, at decision time, is what makes a replay byte-identical to the first answer.
"""

import json
from dataclasses import dataclass

# Built once: json.dumps with options builds a new encoder on every call.
_ENCODER = json.JSONEncoder(separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


def encode_json(payload: object) -> bytes:
    return _ENCODER.encode(payload).encode()


def json_reply(status: int, payload: object, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    return Reply(status, encode_json(payload), headers)
