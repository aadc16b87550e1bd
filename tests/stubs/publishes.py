"""What the stub broker does with a publish: the test confirms, nacks or returns it, once."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from common.amqp.confirms import OnConfirm
from common.envelope import OutboundMessage
from common.errors import PaymqError, PublishFailed, Unroutable


class StubProtocolError(AssertionError):
    """Something a broker refuses happened (the real channel would be closed for it)."""


class Answer(Enum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    NACKED = "nacked"
    RETURNED = "returned"
    #: The connection or the session went before the broker answered.
    FAILED = "failed"


@dataclass
class StubPublish:
    """One publish the consumer made; the test decides what the broker answers, once."""

    message: OutboundMessage
    generation: int
    on_confirm: OnConfirm = field(repr=False)
    answer: Answer = Answer.PENDING

    def confirm(self) -> None:
        self._answer(Answer.CONFIRMED, None)

    def nack(self) -> None:
        """basic.nack: the broker refused it (a full queue with reject-publish, a lost leader)."""
        self._answer(Answer.NACKED, PublishFailed("the broker refused the message (nack)"))

    def return_unroutable(self) -> None:
        """basic.return, then basic.ack: a mandatory message that no queue is bound for."""
        key = self.message.routing_key
        self._answer(Answer.RETURNED, Unroutable(f"no queue is bound for routing key {key!r}"))

    def fail(self, error: PaymqError) -> None:
        """What the session does to a pending publish when its connection goes."""
        self._answer(Answer.FAILED, error)

    def _answer(self, answer: Answer, error: PaymqError | None) -> None:
        if self.answer is not Answer.PENDING:
            raise StubProtocolError(f"{self.message.message_id} was {self.answer.value} already")
        self.answer = answer
        self.on_confirm(error)
