"""`paymq api`: the HTTP payment API and its keys (docs/api.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from paymq import logs
from paymq.clikit import friendly, load_settings

api_app = typer.Typer(help="The HTTP payment API (docs/api.md).", no_args_is_help=True)
api_keys_app = typer.Typer(help="The HTTP API's keys.", no_args_is_help=True)
api_app.add_typer(api_keys_app, name="keys")


@api_app.command("serve")
@friendly
def api_serve() -> None:
    """Serve the HTTP payment API on PAYMQ_API_HOST:PAYMQ_API_PORT (default 127.0.0.1:8080)."""
    from producer.api.server import serve

    settings = load_settings()
    logs.configure_process(settings, "paymq-api")
    serve(settings)


@api_keys_app.command("add")
@friendly
def api_keys_add(
    key_id: Annotated[str, typer.Argument(help="The caller's name, e.g. shop-eu.")],
    channel: Annotated[
        list[str], typer.Option(help="A channel the key may pay on; repeat for more.")
    ],
) -> None:
    """Create an API key. The secret is printed once; only its SHA-256 is kept."""
    from producer.api.keys import add_key

    settings = load_settings()
    secret = add_key(settings.api_keys_path, key_id, channel)
    typer.echo(f"API key {key_id} ({', '.join(channel)}), kept in {settings.api_keys_path}:")
    typer.echo(secret)


@api_keys_app.command("list")
@friendly
def api_keys_list() -> None:
    """The API keys and the channels each may pay on (never a secret: only digests are kept)."""
    from producer.api.keys import ApiKeys

    settings = load_settings()
    keys = ApiKeys.load(settings.api_keys_path).keys
    if not keys:
        typer.echo(f"no API keys in {settings.api_keys_path}")
    for key in keys:
        typer.echo(f"{key.id:32} {', '.join(key.channels)}")


@api_keys_app.command("remove")
@friendly
def api_keys_remove(
    key_id: Annotated[str, typer.Argument(help="The key to revoke.")],
) -> None:
    """Revoke an API key: a running API refuses its secret from the next request on."""
    from producer.api.keys import remove_key

    settings = load_settings()
    remove_key(settings.api_keys_path, key_id)
    typer.echo(f"API key {key_id} removed from {settings.api_keys_path}")


@api_app.command("openapi")
def api_openapi() -> None:
    """Print the API's OpenAPI document (docs/openapi.json is this, committed)."""
    from producer.api.server import openapi_json

    typer.echo(openapi_json(), nl=False)
