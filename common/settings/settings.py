"""paymq's configuration: one object, built once at the entry point and passed down, made of
one section per component (`settings.broker.amqp_url`, `settings.store.database_url`).

Every setting reads the flat environment variable it always has, PAYMQ_<FIELD> (and a line of
`.env` in the working directory); the broker URL also AMQP_URL and RABBITMQ_URL. The broker's
and the store's URLs, which hold passwords, may come from files instead (PAYMQ_AMQP_URL_FILE,
PAYMQ_DATABASE_URL_FILE: a section's `from_files`), read once here. Each section
reads its own fields (section.py); `Settings` reads every section and checks what spans
sections. docs/configuration.md is generated from the sections (`paymq config docs`) and a test
keeps it current.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_core import InitErrorDetails
from pydantic_settings.sources import ENV_FILE_SENTINEL, DotenvType

from common.details import EVM_CHAIN_IDS
from common.settings.api import ApiSettings
from common.settings.broker import BrokerSettings
from common.settings.ethereum import EthereumSettings
from common.settings.faults import FaultSettings
from common.settings.keys import KeySettings
from common.settings.messages import MessageSettings
from common.settings.observability import ObservabilitySettings
from common.settings.providers import ProviderSettings
from common.settings.reconciler import ReconcilerSettings
from common.settings.sandbox import SandboxSettings
from common.settings.section import Process, Section
from common.settings.store import StoreSettings
from common.settings.stripe import StripeSettings
from common.settings.webhooks import WebhookSettings
from common.settings.worker import WorkerSettings


class Settings(BaseModel):
    """Every section, each read from the flat environment on its own; frozen, like them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    broker: BrokerSettings
    keys: KeySettings
    messages: MessageSettings
    worker: WorkerSettings
    store: StoreSettings
    reconciler: ReconcilerSettings
    providers: ProviderSettings
    sandbox: SandboxSettings
    stripe: StripeSettings
    ethereum: EthereumSettings
    api: ApiSettings
    webhooks: WebhookSettings
    observability: ObservabilitySettings
    faults: FaultSettings

    def __init__(self, _env_file: DotenvType | None = ENV_FILE_SENTINEL, **values: Any) -> None:
        """Every section, read from the environment and `_env_file` (`.env` unless told).

        A keyword sets one setting by its field's name, which is its variable's name without
        PAYMQ_ (`Settings(amqp_url=..., max_attempts=3)`, as a test or a tool would), or a
        whole section by the section's name. Every invalid value of every section is reported
        at once, named as the section named it (by its variable, for clikit's messages).
        """
        super().__init__(**_read_sections(values, _env_file))

    def replace(self, **changes: Any) -> Settings:
        """A copy with these settings changed, named as `Settings(...)`'s keywords are, and
        checked as the environment's values are; the environment is not read again."""
        sections = {name: getattr(self, name) for name in type(self).model_fields}
        for name, fields in _by_section(changes).items():
            current = sections[name]
            sections[name] = type(current).model_validate(current.as_given() | fields)
        return type(self).model_validate(sections)

    def value(self, setting: Setting) -> Any:
        """One setting's value, for code that goes through SETTINGS (settings_env, docs)."""
        return getattr(getattr(self, setting.section), setting.name)

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        """Every check that spans fields, of one section or several, in one place: a
        contradiction stops each process at start-up, whether or not it uses the settings."""
        problems = [
            problem
            for problem in (
                _sweeps_after_retries(self),
                _webhook_lease_outlasts_an_attempt(self.webhooks),
                _chain_id_of_the_network(self.ethereum),
            )
            if problem is not None
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def api_keys_path(self) -> Path:
        return self.api.api_keys_file or self.keys.keys_dir / "api-keys.json"

    @property
    def webhook_endpoints_path(self) -> Path:
        return self.webhooks.webhook_endpoints_file or self.keys.keys_dir / "webhooks.json"


def _sweeps_after_retries(settings: Settings) -> str | None:
    slowest_touch_s = max(settings.broker.retry_delays_ms) / 1000 + settings.worker.claim_lease_s
    abandoned_s = settings.reconciler.abandoned_claim_after_s
    if abandoned_s > slowest_touch_s:
        return None
    return (
        f"abandoned_claim_after_s ({abandoned_s:g}) must exceed the longest retry tier plus the "
        f"claim lease ({slowest_touch_s:g} s): a payment waiting in a retry tier would be taken "
        "for abandoned"
    )


def _webhook_lease_outlasts_an_attempt(webhooks: WebhookSettings) -> str | None:
    attempt_s = webhooks.webhook_connect_timeout_s + webhooks.webhook_read_timeout_s
    if webhooks.webhook_lease_s > attempt_s:
        return None
    return (
        "webhook_lease_s must be longer than webhook_connect_timeout_s plus "
        "webhook_read_timeout_s, or a slow attempt loses its lease and is sent twice"
    )


def _chain_id_of_the_network(ethereum: EthereumSettings) -> str | None:
    known = EVM_CHAIN_IDS[ethereum.ethereum_network]
    if ethereum.ethereum_chain_id is None or known is None or ethereum.ethereum_chain_id == known:
        return None
    return (
        f"ethereum_chain_id {ethereum.ethereum_chain_id} is not {ethereum.ethereum_network} "
        f"(chain id {known})"
    )


@dataclass(frozen=True)
class Setting:
    """One setting: the section holding it, its field, and the variables it is read from (the
    first is the one the docs name)."""

    section: str
    name: str
    field: FieldInfo
    variables: tuple[str, ...]
    read_by: tuple[Process, ...]

    @property
    def variable(self) -> str:
        return self.variables[0]


def _section_classes() -> dict[str, type[Section]]:
    found: dict[str, type[Section]] = {}
    for name, field in Settings.model_fields.items():
        kind = field.annotation
        if not (isinstance(kind, type) and issubclass(kind, Section)):
            raise TypeError(f"Settings.{name} is not a section")
        found[name] = kind
    return found


#: Every section, by its name in Settings, in the order of docs/configuration.md.
SECTIONS: Mapping[str, type[Section]] = _section_classes()
#: Every setting, section by section.
SETTINGS: tuple[Setting, ...] = tuple(
    Setting(section, name, field, kind.variables(name), kind.field_readers(name))
    for section, kind in SECTIONS.items()
    for name, field in kind.model_fields.items()
)
_SECTION_OF = {setting.name: setting.section for setting in SETTINGS}


def _by_section(values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    grouped: dict[str, dict[str, Any]] = {}
    for name, value in values.items():
        if name not in _SECTION_OF:
            raise TypeError(f"there is no setting {name!r}")
        grouped.setdefault(_SECTION_OF[name], {})[name] = value
    return grouped


def _read_sections(values: Mapping[str, Any], env_file: DotenvType | None) -> dict[str, Any]:
    """Each section from the environment, the keywords given for it winning; the names of whole
    sections given, and any name left over, go on to the model (which refuses the latter)."""
    given = dict(values)
    read: dict[str, Any] = {}
    problems: list[InitErrorDetails] = []
    for name, kind in SECTIONS.items():
        if name in given:
            read[name] = given.pop(name)
            continue
        own = {field: given.pop(field) for field in kind.model_fields if field in given}
        try:
            read[name] = kind(_env_file=env_file, **own)
        except ValidationError as exc:
            problems.extend(_as_given(exc))
    if problems:
        raise ValidationError.from_exception_data("Settings", problems)
    return read | given


def _as_given(error: ValidationError) -> list[InitErrorDetails]:
    """A section's problems unchanged: where (the field or its variable), what, and why."""
    details: list[InitErrorDetails] = []
    for problem in error.errors(include_url=False):
        detail: InitErrorDetails = {
            "type": problem["type"],
            "loc": problem["loc"],
            "input": problem["input"],
        }
        if "ctx" in problem:
            detail["ctx"] = problem["ctx"]
        details.append(detail)
    return details
