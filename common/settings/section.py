"""What every section of the settings shares: the flat PAYMQ_ variables and `.env`, frozen
values, the constrained types the fields use, and which processes read them.

A section is a `BaseSettings` of its own with the prefix the one flat class had, and no nested
delimiter: a field named `heartbeat_s` reads PAYMQ_HEARTBEAT_S whichever section holds it, so
grouping the settings renamed no variable (tests/unit/test_settings_variables.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import AliasChoices, Field, JsonValue
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.errors import ConfigurationError

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
    #: Fields that may be read from a file instead (a Docker or Kubernetes secret), named by
    #: the field `<name>_file` (PAYMQ_<NAME>_FILE). The section's own validator puts the text
    #: in place with `_text_from_file` and `_put_from_file`.
    from_files: ClassVar[tuple[str, ...]] = ()

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

    def read_from_file(self, name: str) -> bool:
        """Whether the field's value was read from its file (setting both is refused)."""
        return name in self.from_files and getattr(self, f"{name}_file") is not None

    def as_given(self) -> dict[str, Any]:
        """The values as given, to build the section again: those read from files are left
        to their files, which are read again (with them, the section would hold both)."""
        return self.model_dump(exclude={n for n in self.from_files if self.read_from_file(n)})

    def _text_from_file(self, name: str) -> str | None:
        """The text of the field's file, None if it names none; a ValueError naming the
        variables if the field is set too, or the file is unreadable or empty."""
        path = getattr(self, f"{name}_file")
        if path is None:
            return None
        variable, *aliases = self.variables(name)
        if name in self.model_fields_set:
            named = f"{variable} (or {', '.join(aliases)})" if aliases else variable
            raise ValueError(f"{variable}_FILE and {named} are both set: set only one of them")
        try:
            text = read_secret_file(path, f"{variable}_FILE")
        except ConfigurationError as exc:
            raise ValueError(str(exc)) from None
        if text is None:
            raise ValueError(f"{variable}_FILE {path} is empty")
        return text

    def _put_from_file(self, name: str, value: object) -> None:
        """Put a value read from a file in place of the default, while the section is being
        validated: it is frozen, so this is the only moment it may change."""
        self.__dict__[name] = value


def read_secret_file(path: Path, variable: str) -> str | None:
    """The text of a file holding a secret, without the blanks around it; None if it holds
    nothing. ConfigurationError naming the variable that named the file, and never with what
    the file holds, if it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read {variable} {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        # Not kept as the cause: it holds the bytes it could not decode.
        raise ConfigurationError(f"{variable} {path} is not UTF-8 text") from None
    return text.strip() or None
