"""What every section of the settings shares: the flat PAYMQ_ variables and `.env`, frozen
values, the constrained types the fields use, and which processes read them.

A section is a `BaseSettings` of its own with the prefix the one flat class had, and no nested
delimiter: a field named `heartbeat_s` reads PAYMQ_HEARTBEAT_S whichever section holds it, so
grouping the settings renamed no variable (tests/unit/test_settings_variables.py).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, get_args

from pydantic import AliasChoices, Field, JsonValue
from pydantic_settings import BaseSettings, SettingsConfigDict

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]

#: The processes that read settings, as docs/configuration.md names them (and in its order):
#: `paymq worker`, `paymq reconcile` (and workers, unless PAYMQ_WORKER_RECONCILES is false),
#: `paymq api serve`, `paymq webhooks run`, `paymq publish` and the producer library,
#: `paymq sandbox`, and the operators' commands.
Process = Literal["worker", "reconciler", "api", "webhooks", "producer", "sandbox", "cli"]
PROCESSES: tuple[Process, ...] = get_args(Process)


def readers(*processes: Process) -> dict[str, JsonValue]:
    """The processes that read one field, where they are not its section's `read_by`:
    `Field(..., json_schema_extra=readers("api", "producer"))`."""
    return {"read_by": list(processes)}


class Section(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PAYMQ_", env_file=".env", extra="ignore", frozen=True
    )

    #: The section's heading in docs/configuration.md.
    heading: ClassVar[str]
    #: The processes that read the section's fields, but those that name their own readers.
    read_by: ClassVar[tuple[Process, ...]]

    @classmethod
    def field_readers(cls, name: str) -> tuple[Process, ...]:
        """The processes that read a field, in PROCESSES' order."""
        extra = cls.model_fields[name].json_schema_extra
        named = extra.get("read_by") if isinstance(extra, dict) else None
        wanted = cls.read_by if named is None else named
        if not isinstance(wanted, list | tuple) or not set(wanted) <= set(PROCESSES):
            raise TypeError(f"{cls.__name__}.{name}: read_by names no known process: {wanted}")
        return tuple(process for process in PROCESSES if process in wanted)

    @classmethod
    def variables(cls, name: str) -> tuple[str, ...]:
        """The environment variables a field reads, the one the docs name first: its aliases
        if it has any (the broker URL's AMQP_URL and RABBITMQ_URL), else PAYMQ_<FIELD>."""
        alias = cls.model_fields[name].validation_alias
        if isinstance(alias, AliasChoices):
            return tuple(choice for choice in alias.choices if isinstance(choice, str))
        if isinstance(alias, str):
            return (alias,)
        return (f"{cls.model_config.get('env_prefix', '')}{name}".upper(),)
