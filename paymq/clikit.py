"""What every `paymq` command shares: settings from the environment, and paymq's errors as a
clear message and an exit code instead of a traceback."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from common.errors import BrokerUnavailable, PaymqError
from common.settings import Settings

P = ParamSpec("P")
R = TypeVar("R")

err = Console(stderr=True)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False)
        lines = [f"  {_variable(e['loc'])}: {_message(e)}" for e in errors]
        err.print("[red]error:[/red] invalid configuration:\n" + "\n".join(lines))
        raise typer.Exit(2) from None


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


def friendly(func: Callable[P, R]) -> Callable[P, R]:
    """Turn paymq's errors into a clear message and an exit code, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except BrokerUnavailable as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(2) from None
        except PaymqError as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper
