"""Each service of both compose files gets only the keys its duty needs: the parts of the keys
volume docs/docker.md's table gives it, mounted where its settings look, and no private key its
command does not use. Read from the model the official Compose binary resolves; the keys are
the ones `paymq keys init` makes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from common.keygen import INITIAL_SEALING_KEY_ID, init_keys
from common.keyring import PRIVATE_DIR, TRUSTED_DIR, KeyRole, TrustedKey
from common.settings.keys import KeySettings
from tests.compose import REPO_ROOT, Service, resolved_model, run_compose

DOCS = REPO_ROOT / "docs" / "docker.md"
TABLE_HEADER = "| Service | Runs | Mounts from the `keys` volume | Why |"
STACKS = {
    "demo": (REPO_ROOT / "docker-compose.yml", None),
    "production": (
        REPO_ROOT / "deploy" / "compose.production.yml",
        REPO_ROOT / "deploy" / "production.env.example",
    ),
}
#: A mount of the whole keys volume, rather than parts of it.
WHOLE = "the whole volume"

Mounts = frozenset[str] | str


def documented_mounts() -> dict[str, Mounts]:
    """The Keys table of docs/docker.md: each service and what it mounts from the keys volume
    (paths without their trailing slash), or WHOLE."""
    table = DOCS.read_text(encoding="utf-8").split(TABLE_HEADER, 1)[1].split("\n\n", 1)[0]
    found: dict[str, Mounts] = {}
    for row in table.splitlines():
        if not row.startswith("| `"):
            continue  # the header's rest and its rule
        services, _, mounted, _ = (cell.strip() for cell in row.strip().strip("|").split("|"))
        parts: Mounts = (
            WHOLE
            if mounted.startswith(WHOLE)
            else frozenset(part.rstrip("/") for part in re.findall(r"`([^`]+)`", mounted))
        )
        for service in re.findall(r"`([^`]+)`", services):
            found[service] = parts
    return found


def keys_mounts(service: Service) -> list[dict[str, Any]]:
    return [volume for volume in service.get("volumes", []) if volume["source"] == "keys"]


def mounted(service: Service) -> Mounts:
    mounts = keys_mounts(service)
    if any(not mount.get("volume", {}).get("subpath") for mount in mounts):
        return WHOLE
    return frozenset(mount["volume"]["subpath"] for mount in mounts)


@pytest.fixture(scope="module", params=STACKS, ids=STACKS)
def stack(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="module")
def services(stack: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Service]:
    compose_file, env_file = STACKS[stack]
    model = resolved_model(compose_file, tmp_path_factory.mktemp("home"), env_file=env_file)
    resolved: dict[str, Service] = model["services"]
    return resolved


@pytest.fixture(scope="module")
def made_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The key set `paymq keys init` makes, with the default key ids."""
    keys_dir = tmp_path_factory.mktemp("keys")
    defaults = KeySettings.model_fields
    init_keys(
        keys_dir,
        producer_key_id=defaults["producer_key_id"].default,
        worker_key_id=defaults["worker_key_id"].default,
        sealing_key_id=INITIAL_SEALING_KEY_ID,
        gateway_key_id=defaults["gateway_key_id"].default,
    )
    return keys_dir


def needed_roles(command: list[str]) -> set[KeyRole]:
    """The private keys a paymq command signs or opens with (common/keyring.py's roles)."""
    match command[1:3]:
        case ["api", "serve"]:
            return {KeyRole.GATEWAY}  # signs the requests it takes
        case ["worker", "card"]:
            return {KeyRole.WORKER, KeyRole.SEALING}  # signs results, opens sealed card data
        case ["worker", _]:
            return {KeyRole.WORKER}
        case ["demo", _]:
            return {KeyRole.PRODUCER}  # the demo producer signs its batch
        case _:
            return set()  # verifiers: public keys only


def test_the_table_names_every_service(services: dict[str, Service]) -> None:
    assert set(services) <= set(documented_mounts())


def test_each_service_mounts_exactly_what_the_table_gives_it(
    services: dict[str, Service],
) -> None:
    documented = documented_mounts()
    for name, service in services.items():
        assert mounted(service) == documented[name], name


def test_only_the_keys_service_mounts_the_whole_volume_and_writes_to_it(
    services: dict[str, Service],
) -> None:
    for name, service in services.items():
        for mount in keys_mounts(service):
            if name == "keys":
                assert (mount["target"], mount.get("read_only", False)) == ("/keys", False)
            else:
                assert mount["volume"]["subpath"], name
                assert mount["read_only"] is True, name


def test_each_part_is_mounted_where_the_process_looks_for_it(
    services: dict[str, Service],
) -> None:
    for name, service in services.items():
        mounts = keys_mounts(service)
        if not mounts:
            continue
        environment = service["environment"]
        assert environment["PAYMQ_KEYS_DIR"] == "/keys", name
        for mount in mounts:
            subpath = mount.get("volume", {}).get("subpath")
            assert mount["target"] == (f"/keys/{subpath}" if subpath else "/keys"), name
        # The API keys and the webhook endpoints: in the directory the keys service writes them
        # to and their one reader mounts.
        for variable, part in (
            ("PAYMQ_API_KEYS_FILE", "api"),
            ("PAYMQ_WEBHOOK_ENDPOINTS_FILE", "webhooks"),
        ):
            assert Path(environment[variable]).parent == Path("/keys") / part, (name, variable)


#: The setting that names the key a process signs with, by the key's role.
SIGNING_KEY_SETTINGS = {
    KeyRole.PRODUCER: ("PAYMQ_PRODUCER_KEY_ID", "producer_key_id"),
    KeyRole.GATEWAY: ("PAYMQ_GATEWAY_KEY_ID", "gateway_key_id"),
    KeyRole.WORKER: ("PAYMQ_WORKER_KEY_ID", "worker_key_id"),
}


def test_no_service_mounts_a_private_key_its_command_does_not_need(
    services: dict[str, Service], made_keys: Path
) -> None:
    for name, service in services.items():
        if mounted(service) == WHOLE:
            continue
        environment = service.get("environment") or {}
        roles = set()
        for part in sorted(mounted(service)):
            if not part.startswith(f"{PRIVATE_DIR}/"):
                continue
            key_id = Path(part).stem
            assert (made_keys / part).is_file(), f"{name}: keys init makes no {part}"
            trusted = made_keys / TRUSTED_DIR / f"{key_id}.json"
            role = TrustedKey.model_validate_json(trusted.read_bytes()).role
            roles.add(role)
            if role in SIGNING_KEY_SETTINGS:
                # the very key the process signs with, as its settings name it
                variable, field = SIGNING_KEY_SETTINGS[role]
                default = KeySettings.model_fields[field].default
                assert environment.get(variable, default) == key_id, (name, variable)
        assert roles == needed_roles(service.get("command") or []), name


def test_a_process_that_verifies_gets_the_keyring(services: dict[str, Service]) -> None:
    for name, service in services.items():
        command = service.get("command") or []
        if command[:1] == ["paymq"] and mounted(service) not in (WHOLE, frozenset()):
            assert "trusted" in mounted(service), name


def test_the_api_never_holds_a_workers_key_nor_the_sealing_private_key(
    services: dict[str, Service],
) -> None:
    # The case the operator found: every service had the whole volume.
    api = mounted(services["api"])
    assert api != WHOLE
    assert not {part for part in api if "worker" in part or "seal" in part}


def test_the_table_parser_reads_the_rows_it_is_given() -> None:
    rows = documented_mounts()
    assert rows["keys"] == WHOLE
    assert rows["results"] == frozenset({"trusted"})
    assert rows["sandbox"] == frozenset()


#: A rotation's switch of every key at once, in the env file (docs/docker.md, Rotate a key).
SWITCHED = {
    "PAYMQ_PRODUCER_KEY_ID": "producer-2",
    "PAYMQ_GATEWAY_KEY_ID": "gateway-2",
    "PAYMQ_WORKER_KEY_ID": "worker-2",
    "PAYMQ_CARD_SEALING_KEY_ID": "card-seal-2",
}


def private_parts(service: Service) -> set[str]:
    parts = mounted(service)
    assert parts != WHOLE
    return {part for part in parts if part.startswith(f"{PRIVATE_DIR}/")}


def test_a_switch_in_the_env_file_mounts_the_new_key_in_place_of_the_old(
    stack: str, tmp_path: Path
) -> None:
    compose_file, example = STACKS[stack]
    env_file = tmp_path / "switched.env"
    env_file.write_text(
        (example.read_text(encoding="utf-8") if example else "")
        + "".join(f"\n{name}={value}" for name, value in SWITCHED.items())
        + "\n"
    )
    switched: dict[str, Service] = resolved_model(compose_file, tmp_path, env_file=env_file)[
        "services"
    ]
    expected = {
        "api": {"private/gateway-2.pem"},
        "worker-card": {"private/worker-2.pem", "private/card-seal-2.pem"},
        "worker-digital-currency": {"private/worker-2.pem"},
        "producer": {"private/producer-2.pem"},
    }
    for name, service in switched.items():
        if name == "keys":
            continue
        assert private_parts(service) == expected.get(name, set()), name
        # each signer signs with the very key it mounts
        environment = service.get("environment") or {}
        for variable in ("PAYMQ_PRODUCER_KEY_ID", "PAYMQ_GATEWAY_KEY_ID", "PAYMQ_WORKER_KEY_ID"):
            if variable in environment:
                assert f"private/{environment[variable]}.pem" in expected[name], (name, variable)


def documented_sealing_overlap() -> str:
    """The override docs/docker.md has the card workers mount the next sealing key with."""
    section = DOCS.read_text(encoding="utf-8").split("### Rotate a key", 1)[1]
    override = section.split("cat > docker-compose.override.yml <<'EOF'\n", 1)[1]
    return override.split("\nEOF\n", 1)[0] + "\n"


def test_during_a_sealing_rotation_the_card_workers_alone_hold_both_private_keys(
    stack: str, services: dict[str, Service], tmp_path: Path
) -> None:
    compose_file, env_file = STACKS[stack]
    override = tmp_path / "docker-compose.override.yml"
    override.write_text(documented_sealing_overlap())
    result = run_compose(
        compose_file,
        "config",
        "--format",
        "json",
        home=tmp_path,
        overrides=(override,),
        env_file=env_file,
    )
    assert result.returncode == 0, result.stderr
    overlapping: dict[str, Service] = json.loads(result.stdout)["services"]
    assert private_parts(overlapping["worker-card"]) == {
        "private/worker-1.pem",
        "private/card-seal-1.pem",
        "private/card-seal-2.pem",
    }
    mounts = {m["volume"]["subpath"]: m for m in keys_mounts(overlapping["worker-card"])}
    assert mounts["private/card-seal-2.pem"]["target"] == "/keys/private/card-seal-2.pem"
    assert mounts["private/card-seal-2.pem"]["read_only"] is True
    assert {n: s for n, s in overlapping.items() if n != "worker-card"} == {
        n: s for n, s in services.items() if n != "worker-card"
    }
