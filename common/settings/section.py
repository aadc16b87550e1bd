"""What every section of the settings shares: the flat PAYMQ_ variables and `.env`, frozen
values, and the constrained types the fields use.

A section is a `BaseSettings` of its own with the prefix the one flat class had, and no nested
delimiter: a field named `heartbeat_s` reads PAYMQ_HEARTBEAT_S whichever section holds it, so
grouping the settings renamed no variable (tests/unit/test_settings_variables.py).
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]


class Section(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PAYMQ_", env_file=".env", extra="ignore", frozen=True
    )

    #: The section's heading in docs/configuration.md.
    heading: ClassVar[str]

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
