"""Publisher-confirm bookkeeping: pure, no pika.

A channel in confirm mode numbers publishes 1, 2, 3...; the broker acks or nacks them, singly or
`multiple` up to a tag. A mandatory message that no queue accepts comes back as basic.return
*before* its ack, so a returned message id turns the next ack for it into Unroutable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from common.errors import PaymqError, PublishFailed, Unroutable

#: Called once per publish: None when confirmed, else the error.
OnConfirm = Callable[[PaymqError | None], None]


@dataclass
class _Pending:
    message_id: str
    routing_key: str
    on_confirm: OnConfirm
    returned: bool = False


class ConfirmTracker:
    def __init__(self) -> None:
        self._next_tag = 1
        self._pending: dict[int, _Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def published(self, message_id: str, routing_key: str, on_confirm: OnConfirm) -> int:
        """Record a publish just made on the channel; returns its delivery tag."""
        tag = self._next_tag
        self._next_tag += 1
        self._pending[tag] = _Pending(message_id, routing_key, on_confirm)
        return tag

    def returned(self, message_id: str | None) -> None:
        # The oldest pending publish with that id is the one returned: returns arrive in order.
        for pending in self._pending.values():
            if pending.message_id == message_id and not pending.returned:
                pending.returned = True
                return

    def acked(self, tag: int, *, multiple: bool) -> None:
        for pending in self._take(tag, multiple):
            if pending.returned:
                pending.on_confirm(
                    Unroutable(f"no queue is bound for routing key {pending.routing_key!r}")
                )
            else:
                pending.on_confirm(None)

    def nacked(self, tag: int, *, multiple: bool) -> None:
        for pending in self._take(tag, multiple):
            pending.on_confirm(PublishFailed("the broker refused the message (nack)"))

    def fail_all(self, error: PaymqError) -> None:
        """The channel is gone: nothing pending will be confirmed on it."""
        pending, self._pending = list(self._pending.values()), {}
        for item in pending:
            item.on_confirm(error)

    def _take(self, tag: int, multiple: bool) -> list[_Pending]:
        if not multiple:
            item = self._pending.pop(tag, None)
            return [item] if item else []
        # A multiple ack of tag 0 confirms everything outstanding (AMQP 0-9-1, basic.ack).
        tags = sorted(t for t in self._pending if tag == 0 or t <= tag)
        return [self._pending.pop(t) for t in tags]
