"""Fault rules: which misbehaviour to inject into which payment requests, and how many times.

Rules are checked in creation order; the first one that matches and has uses left applies and
uses one up. Exhausted rules stay listed (remaining 0) so a test can see that they fired.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from sandbox import fields
from sandbox.errors import invalid_request

FAULTABLE_PATHS = frozenset({"/v1/charges", "/v1/payouts"})
_ERROR_STATUSES = frozenset({500, 502, 503, 504})
# A cap so that a mistyped delay cannot wedge a test run for hours.
_MAX_DELAY_S = 600.0
_MAX_TIMES = 1_000_000
_RULE_FIELDS = frozenset(
    {"action", "times", "reference", "path", "status", "retry_after_s", "delay_s"}
)


class FaultAction(StrEnum):
    ERROR_BEFORE_EFFECT = "error_before_effect"
    ERROR_AFTER_EFFECT = "error_after_effect"
    TIMEOUT_AFTER_EFFECT = "timeout_after_effect"
    RESET_BEFORE_EFFECT = "reset_before_effect"
    RESET_AFTER_EFFECT = "reset_after_effect"
    RATE_LIMIT = "rate_limit"

    @property
    def before_effect(self) -> bool:
        return self in _BEFORE_EFFECT


_BEFORE_EFFECT = frozenset(
    {FaultAction.ERROR_BEFORE_EFFECT, FaultAction.RESET_BEFORE_EFFECT, FaultAction.RATE_LIMIT}
)
_ACTIONS = frozenset(action.value for action in FaultAction)


@dataclass(slots=True)
class FaultRule:
    id: str
    action: FaultAction
    times: int
    remaining: int
    reference: str | None
    path: str | None
    status: int
    retry_after_s: int
    delay_s: float
    #: The card token or payout address that added the rule (sandbox/scenarios.py); None for
    #: a rule added through the control API.
    trigger: str | None = None

    def matches(self, path: str, reference: str | None) -> bool:
        return (
            self.remaining > 0
            and (self.path is None or self.path == path)
            and (self.reference is None or self.reference == reference)
        )

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "action": self.action.value,
            "times": self.times,
            "remaining": self.remaining,
            "reference": self.reference,
            "path": self.path,
            "status": self.status,
            "retry_after_s": self.retry_after_s,
            "delay_s": self.delay_s,
            "trigger": self.trigger,
        }


def parse_fault_rule(body: Mapping[str, object], rule_id: str) -> FaultRule:
    fields.reject_unknown(body, _RULE_FIELDS)
    action = fields.required(body, "action")
    if not isinstance(action, str) or action not in _ACTIONS:
        choices = sorted(_ACTIONS)
        raise invalid_request("parameter_invalid", f"action must be one of {choices}.", "action")
    path = body.get("path")
    if path is not None and (not isinstance(path, str) or path not in FAULTABLE_PATHS):
        paths = sorted(FAULTABLE_PATHS)
        raise invalid_request("parameter_invalid", f"path must be one of {paths}.", "path")
    status = fields.integer(body.get("status", 500), "status", minimum=500, maximum=504)
    if status not in _ERROR_STATUSES:
        raise invalid_request("parameter_invalid", "status must be 500, 502, 503 or 504.", "status")
    times = fields.integer(body.get("times", 1), "times", minimum=1, maximum=_MAX_TIMES)
    reference = body.get("reference")
    return FaultRule(
        id=rule_id,
        action=FaultAction(action),
        times=times,
        remaining=times,
        reference=None if reference is None else fields.string(reference, "reference", max_len=128),
        path=path,
        status=status,
        retry_after_s=fields.integer(
            body.get("retry_after_s", 1), "retry_after_s", minimum=0, maximum=86_400
        ),
        delay_s=fields.number(
            body.get("delay_s", 30.0), "delay_s", minimum=0, maximum=_MAX_DELAY_S
        ),
    )


class FaultBook:
    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        # (path, reference) of every rule a scenario added: a scenario fires once per payment.
        self._triggered: set[tuple[str | None, str | None]] = set()

    def add(self, rule: FaultRule) -> None:
        self._rules.append(rule)
        if rule.trigger is not None:
            self._triggered.add((rule.path, rule.reference))

    def triggered(self, path: str, reference: str) -> bool:
        """Has a scenario already added its rule for this reference on this path?"""
        return (path, reference) in self._triggered

    def take(self, path: str, reference: str | None) -> FaultRule | None:
        """The first matching rule with uses left, with one use consumed; None if none match."""
        for rule in self._rules:
            if rule.matches(path, reference):
                rule.remaining -= 1
                return rule
        return None

    def rules(self) -> list[FaultRule]:
        return list(self._rules)

    def clear(self) -> None:
        """Every rule, and which references met their scenario: a scenario fires again."""
        self._rules.clear()
        self._triggered.clear()
