"""The webhook endpoints file (PAYMQ_WEBHOOK_ENDPOINTS_FILE, default keys/webhooks.json):
each endpoint's id, URL, signing secret and optional filters. It holds secrets, so it is written
with mode 0600 and never printed whole; `paymq webhooks add` shows a new secret once.

`add` refuses a URL whose host is a literal address the sender would refuse (127.0.0.1,
0x7f000001, [::1], 169.254.169.254), to say so at once; the sender judges every address again
when it connects, and that check is the one that counts (a name may resolve anywhere)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from common.details import CHANNELS
from common.errors import ConfigurationError
from common.models import PaymentStatus
from common.privatefiles import Reloading, write_private_json
from common.webhooks import SECRET_PREFIX, new_webhook_secret
from webhooks.addresses import AddressPolicy, literal_address

_ID_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_.-")
_MAX_ID_CHARS = 32
_STATUSES = tuple(status.value for status in PaymentStatus)


@dataclass(frozen=True)
class Endpoint:
    id: str
    url: str
    secret: str = field(repr=False)
    #: Only results of these channels / statuses; empty means every one.
    channels: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()

    def matches(self, channel: str, status: str) -> bool:
        return (not self.channels or channel in self.channels) and (
            not self.statuses or status in self.statuses
        )

    def public(self) -> dict[str, object]:
        """Everything but the secret: what `paymq webhooks list` shows."""
        return {
            "id": self.id,
            "url": self.url,
            "channels": list(self.channels),
            "statuses": list(self.statuses),
        }


@dataclass(frozen=True)
class Endpoints:
    endpoints: tuple[Endpoint, ...] = ()

    @classmethod
    def load(cls, path: Path) -> Endpoints:
        """The endpoints in `path`; none when it does not exist. ConfigurationError if bad."""
        if not path.exists():
            return cls()
        try:
            entries = json.loads(path.read_text())["endpoints"]
            endpoints = tuple(
                Endpoint(
                    id=e["id"],
                    url=e["url"],
                    secret=e["secret"],
                    channels=tuple(e.get("channels", ())),
                    statuses=tuple(e.get("statuses", ())),
                )
                for e in entries
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # Not kept as the cause: a JSON error holds the whole file, endpoints' secrets too.
            raise ConfigurationError(
                f"cannot read webhook endpoints from {path}: {type(exc).__name__}"
            ) from None
        for endpoint in endpoints:
            check_endpoint(endpoint)
        if len({e.id for e in endpoints}) != len(endpoints):
            raise ConfigurationError(f"{path} names a webhook endpoint id twice")
        return cls(endpoints)

    def get(self, endpoint_id: str) -> Endpoint | None:
        return next((e for e in self.endpoints if e.id == endpoint_id), None)

    def matching(self, channel: str, status: str) -> tuple[Endpoint, ...]:
        return tuple(e for e in self.endpoints if e.matches(channel, status))


def add_endpoint(
    path: Path,
    url: str,
    *,
    endpoint_id: str | None = None,
    channels: Sequence[str] = (),
    statuses: Sequence[str] = (),
    allow_private_networks: bool = False,
) -> Endpoint:
    """Register an endpoint with a new secret; the returned Endpoint is the only time the
    secret is shown."""
    existing = Endpoints.load(path).endpoints
    new = Endpoint(
        id=endpoint_id or f"ep-{secrets.token_hex(4)}",
        url=url,
        secret=new_webhook_secret(),
        channels=tuple(dict.fromkeys(channels)),
        statuses=tuple(dict.fromkeys(statuses)),
    )
    check_endpoint(new)
    check_address(new.url, AddressPolicy(allow_private_networks))
    if any(e.id == new.id for e in existing):
        raise ConfigurationError(f"a webhook endpoint {new.id!r} exists already in {path}")
    _write(path, (*existing, new))
    return new


def remove_endpoint(path: Path, endpoint_id: str) -> None:
    existing = Endpoints.load(path).endpoints
    kept = tuple(e for e in existing if e.id != endpoint_id)
    if len(kept) == len(existing):
        raise ConfigurationError(f"no webhook endpoint {endpoint_id!r} in {path}")
    _write(path, kept)


def check_endpoint(endpoint: Endpoint) -> None:
    if not endpoint.id or len(endpoint.id) > _MAX_ID_CHARS or not set(endpoint.id) <= _ID_CHARS:
        raise ConfigurationError(
            f"webhook endpoint id {endpoint.id!r}: 1-{_MAX_ID_CHARS} of a-z, 0-9, '_', '.', '-'"
        )
    check_url(endpoint.url)
    if not endpoint.secret.startswith(SECRET_PREFIX):
        raise ConfigurationError(f"webhook endpoint {endpoint.id!r}: the secret is not whsec_...")
    unknown_channels = set(endpoint.channels) - set(CHANNELS)
    if unknown_channels:
        raise ConfigurationError(
            f"unknown channel {sorted(unknown_channels)[0]!r}; known: {', '.join(CHANNELS)}"
        )
    unknown_statuses = set(endpoint.statuses) - set(_STATUSES)
    if unknown_statuses:
        raise ConfigurationError(
            f"unknown status {sorted(unknown_statuses)[0]!r}; known: {', '.join(_STATUSES)}"
        )


def check_url(url: str) -> None:
    """http or https with a host, and no credentials in it (they would end up in logs)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError as exc:
        raise ConfigurationError(f"webhook URL {url!r} is not a URL") from exc
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigurationError(f"webhook URL {url!r}: only http:// and https:// URLs")
    if parts.username is not None or parts.password is not None:
        raise ConfigurationError("a webhook URL may not carry credentials: the secret signs")


def check_address(url: str, policy: AddressPolicy) -> None:
    """Refuse a URL whose host spells an address `policy` refuses; names pass (they are
    judged on what they resolve to at each attempt)."""
    address = literal_address(urlsplit(url).hostname or "")
    refusal = None if address is None else policy.refusal(address)
    if refusal is not None:
        raise ConfigurationError(
            f"webhook URL {url!r}: {refusal} addresses are not allowed; webhooks go to public "
            "addresses only (PAYMQ_WEBHOOK_ALLOW_PRIVATE_NETWORKS=true for endpoints in your own "
            "network)"
        )


def _write(path: Path, endpoints: Sequence[Endpoint]) -> None:
    write_private_json(path, {"endpoints": [{**e.public(), "secret": e.secret} for e in endpoints]})


def endpoints_file(path: Path) -> Reloading[Endpoints]:
    """The endpoints as the file says now, read again when it changes (`paymq webhooks add`
    while `run` runs); a file that breaks meanwhile keeps the last good endpoints."""
    return Reloading(path, Endpoints.load)
