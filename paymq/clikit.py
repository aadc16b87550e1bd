"""What every `paymq` command shares: settings from the environment, and paymq's errors as a
clear message and an exit status instead of a traceback.

Exit statuses, decided here for every command (`friendly`):
    0    done
    1    it ran, and failed or refused (a payment not found, an API key that exists already, a
         queue declared with other arguments, a tool's child process that did not start:
         running it again as it is will not help)
    2    it could not start: called wrong (click's usage errors, `UsageError`), invalid
         settings, or a broker or payment store that does not answer (later it may work)
    130  interrupted

The errors ended this way are paymq's payment failures (PaymqError), setup problems
(SetupError) and a command's own failures (CommandFailed, the base of the tools' errors); any
other exception is a bug, and shows its traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from common.errors import (
    BrokerUnavailable,
    ConfigurationError,
    PaymqError,
    SetupError,
    StoreUnavailable,
)
from common.settings import Settings

P = ParamSpec("P")
R = TypeVar("R")

err = Console(stderr=True)


class UsageError(SetupError):
    """The command line asks for something that does not exist (an unknown channel)."""

    code = "usage"


class CommandFailed(Exception):
    """A command's own work failed, for a reason one line says. paymq's tools raise theirs
    under it (tools/paymq_tools/errors.py, ToolError): outside the payment taxonomy."""

    code: str = "command_failed"


#: What `friendly` ends a command on: one line, and an exit status.
FRIENDLY_ERRORS = (PaymqError, SetupError, CommandFailed)
Friendly = PaymqError | SetupError | CommandFailed

#: The exit status of each of paymq's errors, the most specific first (see the module's doc).
EXIT_STATUSES: tuple[tuple[type[Friendly], int], ...] = (
    (UsageError, 2),
    (BrokerUnavailable, 2),
    (StoreUnavailable, 2),
    (ConfigurationError, 1),
    (SetupError, 1),
    (PaymqError, 1),
    (CommandFailed, 1),
)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False)
        lines = [f"  {_line(e)}" for e in errors]
        err.print("[red]error:[/red] invalid configuration:\n" + "\n".join(lines), soft_wrap=True)
        raise typer.Exit(2) from None


def _line(error: Mapping[str, Any]) -> str:
    """One problem: the variable it is about, or none for a check across settings (its
    message names the settings it compares)."""
    if not error["loc"]:
        return _message(error)
    return f"{_variable(error['loc'])}: {_message(error)}"


def _variable(loc: tuple[int | str, ...]) -> str:
    """The environment variable a problem is about (a field read through aliases is named by
    its first alias, PAYMQ_AMQP_URL, already)."""
    name = "_".join(str(part) for part in loc).upper()
    return name if name.startswith("PAYMQ_") else f"PAYMQ_{name}"


def _message(error: Mapping[str, Any]) -> str:
    """Our own validators' messages as written (pydantic prefixes them "Value error, ")."""
    message = str(error["msg"])
    if error.get("type") == "value_error":
        return message.removeprefix("Value error, ")
    return message


def exit_status(error: Friendly) -> int:
    return next(status for kind, status in EXIT_STATUSES if isinstance(error, kind))


def friendly(func: Callable[P, R]) -> Callable[P, R]:
    """Turn paymq's errors into one line on standard error and an exit status, never a
    traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except FRIENDLY_ERRORS as exc:
            # Unwrapped whatever the width (a log keeps it as one line), and the message's
            # brackets are its own, not markup.
            err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(exit_status(exc)) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper
