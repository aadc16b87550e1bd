"""`paymq keys`: the keyring."""

from __future__ import annotations

from typing import Annotated

import typer

from paymq.clikit import friendly, load_settings

keys_app = typer.Typer(
    help="Create, list and retire signing and sealing keys.", no_args_is_help=True
)


# --- keys --------------------------------------------------------------------------------------


@keys_app.command("init")
@friendly
def keys_init() -> None:
    """Create a working key set (producer, HTTP API gateway, worker, card sealing) unless it
    exists, and the directories the API keys and the webhook endpoints are kept in."""
    from common.keygen import INITIAL_SEALING_KEY_ID, init_keys

    settings = load_settings()
    created = init_keys(
        settings.keys.keys_dir,
        producer_key_id=settings.keys.producer_key_id,
        worker_key_id=settings.keys.worker_key_id,
        sealing_key_id=INITIAL_SEALING_KEY_ID,
        gateway_key_id=settings.keys.gateway_key_id,
    )
    # Before any key or endpoint is added: a deployment that mounts each directory into the
    # process that reads it (docs/docker.md, Keys) needs it to exist when that process starts.
    for kept in (settings.api_keys_path, settings.webhook_endpoints_path):
        kept.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    for key in created:
        typer.echo(f"created {key.key_id}: {key.private_path} (private), {key.trusted_path}")
    if not created:
        typer.echo(f"keys already present in {settings.keys.keys_dir}")


@keys_app.command("generate")
@friendly
def keys_generate(
    key_id: Annotated[str, typer.Option(help="Unique key id, e.g. shop-2026-11.")],
    role: Annotated[str, typer.Option(help="producer, gateway, worker or sealing.")] = "producer",
    owner: Annotated[
        str | None,
        typer.Option(
            help="Who holds the private key; by default the role's own (producer, api-gateway, "
            "worker, card-workers), as `keys init` gives them."
        ),
    ] = None,
    channels: Annotated[
        str, typer.Option(help="Comma-separated channels.")
    ] = "card,digital_currency",
) -> None:
    """Generate a key pair: private/<id>.pem (0600) and trusted/<id>.json (the keyring entry)."""
    from common.errors import ConfigurationError
    from common.keygen import generate_key
    from common.keyring import KeyRole

    settings = load_settings()
    try:
        key_role = KeyRole(role)
    except ValueError:
        raise ConfigurationError(
            f"unknown role {role!r}; one of {', '.join(r.value for r in KeyRole)}"
        ) from None
    key = generate_key(
        settings.keys.keys_dir,
        key_id=key_id,
        owner=owner,
        role=key_role,
        channels=tuple(c.strip() for c in channels.split(",") if c.strip()),
    )
    typer.echo(f"private key: {key.private_path}\ntrusted key: {key.trusted_path}")
    typer.echo(
        "Next: copy the trusted key into every keyring that verifies it, confirm that every "
        "running verifier logs it, then switch the signer (docs/protocol.md#rotation)."
    )


@keys_app.command("phase-out")
@friendly
def keys_phase_out(key_id: str) -> None:
    """Mark a trusted key retiring: what it signed still verifies, nothing new is signed (or
    sealed) with it. The step after switching its signers to the new key."""
    from common.keygen import set_status
    from common.keyring import KeyStatus

    path = set_status(load_settings().keys.keys_dir, key_id, KeyStatus.RETIRING)
    typer.echo(f"{key_id} is retiring ({path}): it verifies, and signs nothing new")


@keys_app.command("retire")
@friendly
def keys_retire(key_id: str) -> None:
    """Mark a trusted key retired: its signatures are refused from then on."""
    from common.keygen import set_status
    from common.keyring import KeyStatus

    path = set_status(load_settings().keys.keys_dir, key_id, KeyStatus.RETIRED)
    typer.echo(f"retired {key_id} ({path})")


@keys_app.command("remove")
@friendly
def keys_remove(key_id: str) -> None:
    """Delete a retired key: its trusted entry and, when this directory holds it, its private
    key."""
    from common.keygen import remove_key

    for path in remove_key(load_settings().keys.keys_dir, key_id):
        typer.echo(f"removed {path}")


@keys_app.command("list")
@friendly
def keys_list() -> None:
    """List the keyring: key id, owner, role, channels, status."""
    from common.keyring import TRUSTED_DIR, Keyring

    for key in Keyring.load(load_settings().keys.keys_dir / TRUSTED_DIR).trusted_keys():
        channels = ",".join(key.channels)
        typer.echo(f"{key.key_id:24} {key.owner:16} {key.role:9} {key.status:8} {channels}")
