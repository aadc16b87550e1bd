"""Refusals before any claim are noted in the store (table rejections), so whoever published the
request can learn of them: the HTTP API shows its submission rejected with the code."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import select

from common.envelope import HEADER_KEY_ID
from store.schema import rejections

if TYPE_CHECKING:
    from common.envelope import InboundMessage
    from tests.unit.conftest import Worker


def test_a_request_refused_before_the_claim_is_noted_under_its_id_and_exact_bytes(
    make_request: Callable[..., tuple[object, InboundMessage]],
    worker: Worker,
) -> None:
    # Given a request signed by a key nobody trusts
    _, signed = make_request()
    message = dataclasses.replace(signed, headers={**signed.headers, HEADER_KEY_ID: "stranger"})
    # When a worker refuses it
    handled = worker.handle(message)
    assert handled.result.code == "unknown_key"
    # Then the refusal is kept for exactly those bytes under that message id, and only those
    digest = hashlib.sha256(message.body).hexdigest()
    assert message.message_id is not None
    noted = worker.views.rejection_of(message.message_id, digest)
    assert noted is not None
    assert (noted.code, noted.payment_id) == ("unknown_key", None)  # signature never verified
    assert "stranger" in noted.reason
    assert (
        worker.views.rejection_of(message.message_id, hashlib.sha256(b"other").hexdigest()) is None
    )


def test_a_message_id_no_column_can_hold_is_noted_cut_short_and_without_nul(
    make_request: Callable[..., tuple[object, InboundMessage]],
    worker: Worker,
) -> None:
    # Given a refused message whose id is longer than the column and holds a NUL (which
    # PostgreSQL text refuses: the note would fail for ever and the refusal wait in a tier)
    _, signed = make_request()
    message = dataclasses.replace(signed, message_id="m\x00" + "x" * 300)
    # When a worker refuses it (its signature covers the id)
    handled = worker.handle(message)
    # Then it is refused at once, and noted under an id the column holds
    assert handled.result.code == "signature_invalid"
    with worker.store.engine.connect() as connection:
        [noted] = connection.execute(select(rejections.c.request_message_id)).scalars().all()
    assert len(noted) == 128
    assert "\x00" not in noted
