"""A broker address: one AMQP URL, or a comma-separated list of a cluster's nodes.

    amqp://paymq:secret@rabbit-1:5672/%2F,amqp://paymq:secret@rabbit-2:5672/%2F

Every process takes the nodes in an order of its own (shuffled, so connections spread over
the cluster), connects to the first that answers, and moves on to the next when its node goes.
A comma inside a password is written %2C, as in any URL.

Pure: parsing, checking and the order of the nodes; connecting is common/amqp/session.py's
and common/amqp/admin.py's job.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from urllib.parse import urlsplit

import pika

SCHEMES = ("amqp", "amqps")


class InvalidBrokerAddress(ValueError):
    """One of the listed URLs is not an AMQP URL; the message names it, password masked."""


def redact(address: str) -> str:
    """The address (one URL or a list) without passwords, for messages and logs."""
    return ",".join(_redact_one(url) for url in address.split(","))


def unreachable(address: str, detail: str) -> str:
    """What to say when no node of the address answered."""
    urls = node_urls(address)
    if len(urls) == 1:
        return f"cannot reach RabbitMQ at {redact(address)}: {detail}"
    return f"cannot reach any of the {len(urls)} RabbitMQ nodes at {redact(address)}: {detail}"


def _redact_one(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


def node_urls(address: str | Sequence[str]) -> tuple[str, ...]:
    """The URLs of an address, in the order written (no checks: see `check_address`)."""
    if isinstance(address, str):
        return tuple(part.strip() for part in address.split(","))
    return tuple(address)


def check_address(address: str) -> str:
    """The address with blanks around its URLs removed, or InvalidBrokerAddress naming the
    first URL that is not an AMQP URL (and which of the list it is)."""
    urls = node_urls(address)
    seen: set[str] = set()
    for index, url in enumerate(urls, start=1):
        where = f"address {index} of {len(urls)}" if len(urls) > 1 else "the address"
        if not url:
            raise InvalidBrokerAddress(
                f"{where} is empty: list AMQP URLs separated by single commas"
            )
        problem = _problem(url)
        if problem is not None:
            raise InvalidBrokerAddress(
                f"{where} ({_redact_one(url)}) is not an AMQP URL: {problem}"
            )
        if url in seen:
            raise InvalidBrokerAddress(f"{where} ({_redact_one(url)}) is listed twice")
        seen.add(url)
    return ",".join(urls)


def _problem(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return str(exc)
    checks = (
        (
            parts.scheme in SCHEMES,
            f"the scheme must be amqp:// or amqps://, not {parts.scheme or 'none'!r}",
        ),
        (bool(parts.hostname), "no host"),
        (port != 0, "port 0"),
        (parts.path.count("/") <= 1, "the virtual host is one path segment (write / as %2F)"),
    )
    problem = next((problem for passed, problem in checks if not passed), None)
    if problem is None:
        try:
            pika.URLParameters(url)  # its query options
        except (ValueError, TypeError) as exc:
            problem = str(exc) or type(exc).__name__
    return problem


class NodeRotation:
    """The nodes in this process's own order; `advance` moves to the next, round and round."""

    def __init__(self, address: str | Sequence[str], rng: random.Random | None = None) -> None:
        urls = list(node_urls(address))
        (rng or random.Random()).shuffle(urls)  # noqa: S311 - load spreading, not secrecy
        self._urls = tuple(urls)
        self._index = 0

    def __len__(self) -> int:
        return len(self._urls)

    @property
    def urls(self) -> tuple[str, ...]:
        """Every node, from the current one on."""
        return self._urls[self._index :] + self._urls[: self._index]

    @property
    def current(self) -> str:
        return self._urls[self._index]

    def advance(self) -> str:
        self._index = (self._index + 1) % len(self._urls)
        return self.current
