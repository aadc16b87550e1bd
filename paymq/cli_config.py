"""`paymq config`: the effective configuration and its documentation."""

from __future__ import annotations

import sys

import typer

from paymq.clikit import friendly, load_settings

config_app = typer.Typer(help="Show the configuration and its documentation.", no_args_is_help=True)


@config_app.command("show")
@friendly
def config_show() -> None:
    """Print the effective configuration (secrets redacted: keys, and the password of every
    URL, the store's included)."""
    from pydantic import SecretStr

    from common.amqp.nodes import redact
    from common.settings import SETTINGS

    settings = load_settings()
    dumped = settings.model_dump(mode="json")  # secrets masked
    for setting in SETTINGS:
        value = dumped[setting.section][setting.name]
        secret = settings.value(setting)
        if isinstance(secret, SecretStr) and "://" in secret.get_secret_value():
            value = secret.get_secret_value()  # a URL: where it points is no secret
        shown = redact(value) if isinstance(value, str) and "://" in value else value
        typer.echo(f"{setting.variable}={shown}")


@config_app.command("docs")
def config_docs() -> None:
    """Print docs/configuration.md, generated from the settings class."""
    from paymq.configdoc import render

    sys.stdout.write(render())
