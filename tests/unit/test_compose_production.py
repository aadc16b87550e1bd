"""deploy/compose.production.yml, checked without a Docker engine: the official Compose binary
validates it with deploy/production.env.example, and the tests read the production stack's
shape from the model it resolves. Production is the product alone, at the defaults' pace, each
process on a broker user of its own; the demo's values stay in docker-compose.yml.

The URLs that hold passwords are Compose secrets, files on the host: the tests write each with
the example URL the env file gives above its variable, and read a service's URLs through the
secrets it mounts, as the process in its container would."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from common.amqp.permissions import broker_roles
from common.settings import SETTINGS, Settings
from common.settings.worker import WorkerSettings
from common.topology import Topology
from tests.compose import REPO_ROOT, Service, resolved_model, run_compose

PRODUCTION = REPO_ROOT / "deploy" / "compose.production.yml"
EXAMPLE_ENV = REPO_ROOT / "deploy" / "production.env.example"
DEMO = REPO_ROOT / "docker-compose.yml"
DOCS = REPO_ROOT / "docs" / "docker.md"
#: The table of docs/docker.md ("In production") naming each service's user and secrets.
TABLE_HEADER = "| Service | Runs | Broker user | Secrets (in `/run/secrets/`) |"

WORKERS = {"worker-card", "worker-digital-currency"}
#: Each service that talks to the broker, and the role (docs/docker.md) whose user it runs as.
BROKER_ROLES = {
    "worker-card": "worker-card",
    "worker-digital-currency": "worker-digital_currency",
    "api": "api",
    "webhooks": "webhooks",
}
#: What production may set: where things are, which providers, and how processes present
#: themselves. Anything else (a pace, a retry, a capacity) keeps its default, or is added here
#: on purpose, with a reason.
WHERE_THINGS_ARE = {
    "PAYMQ_AMQP_URL_FILE",
    "PAYMQ_DATABASE_URL_FILE",
    "PAYMQ_KEYS_DIR",
    # The key each signer signs with, which also names the private file it mounts: a key
    # rotation switches both at once (docs/docker.md, Rotate a key).
    "PAYMQ_GATEWAY_KEY_ID",
    "PAYMQ_WORKER_KEY_ID",
    "PAYMQ_API_KEYS_FILE",
    "PAYMQ_WEBHOOK_ENDPOINTS_FILE",
    "PAYMQ_DECLARE_TOPOLOGY",
    "PAYMQ_LOG_FORMAT",
    "PAYMQ_METRICS_HOST",
    "PAYMQ_METRICS_PORT",
    "PAYMQ_HEALTH_FILE",
    "PAYMQ_API_HOST",
    "PAYMQ_API_PORT",
    "PAYMQ_CARD_PROVIDERS",
    "PAYMQ_STRIPE_API_KEY_FILE",
    "PAYMQ_PAYOUT_PROVIDERS",
    "PAYMQ_ETHEREUM_RPC_URL",
    "PAYMQ_ETHEREUM_NETWORK",
    "PAYMQ_ETHEREUM_PRIVATE_KEY_FILE",
}
#: Required variables: ${NAME:?why} in the compose file.
REQUIRED = re.compile(r"\$\{([A-Z0-9_]+):\?")
#: A file on the host holding a URL with its password, a Compose secret's source.
URL_FILE_ON_HOST = re.compile(r"^[A-Z0-9_]+_URL_FILE_ON_HOST$")
#: The example URL the env file gives for such a file: on the comment line above its variable.
EXAMPLE_URL = re.compile(r"^#\s+(\S+://\S+)\n([A-Z0-9_]+)=", re.MULTILINE)
#: A URL with a password in it (a user, a colon, a password, an @), anywhere in a text.
URL_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^\s/@\"]*:[^\s/@\"]*@")
#: Where a container finds the secrets mounted into it.
SECRETS_DIR = "/run/secrets/"


@pytest.fixture(scope="module")
def env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example env file, with each URL file on the host written, holding its example URL."""
    secrets_dir = tmp_path_factory.mktemp("secrets")
    on_host = {}
    for variable, url in example_urls().items():
        on_host[variable] = secrets_dir / variable.lower()
        on_host[variable].write_text(url + "\n", encoding="utf-8")
    lines = [
        f"{name}={on_host[name]}" if (name := line.split("=", 1)[0]) in on_host else line
        for line in EXAMPLE_ENV.read_text(encoding="utf-8").splitlines()
    ]
    written = secrets_dir / "production.env"
    written.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return written


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory, env_file: Path) -> dict[str, Any]:
    return resolved_model(PRODUCTION, tmp_path_factory.mktemp("home"), env_file=env_file)


@pytest.fixture(scope="module")
def services(model: dict[str, Any]) -> dict[str, Service]:
    resolved: dict[str, Service] = model["services"]
    return resolved


def required_variables() -> set[str]:
    """The variables the file requires, outside its comments."""
    lines = PRODUCTION.read_text(encoding="utf-8").splitlines()
    return set(REQUIRED.findall("\n".join(ln for ln in lines if not ln.lstrip().startswith("#"))))


def example_values() -> dict[str, str]:
    lines = EXAMPLE_ENV.read_text(encoding="utf-8").splitlines()
    pairs = (line.split("=", 1) for line in lines if line and not line.startswith("#"))
    return {name: value for name, value in pairs}


def example_urls() -> dict[str, str]:
    """Each URL file variable of the example env file, and the example URL given for it."""
    text = EXAMPLE_ENV.read_text(encoding="utf-8")
    return {variable: url for url, variable in EXAMPLE_URL.findall(text)}


def host_file(model: dict[str, Any], name: str, in_container: str) -> Path:
    """The file on the host that a path under /run/secrets/ is in the service's container: the
    source of the secret mounted there. The test fails if no secret is mounted there."""
    mounted = {
        secret["target"]: secret["source"] for secret in model["services"][name].get("secrets", [])
    }
    assert in_container in mounted, f"{name}: no secret is mounted at {in_container}"
    return Path(model["secrets"][mounted[in_container]]["file"])


def url_of(model: dict[str, Any], name: str, variable: str) -> str:
    """The URL a service's process reads from the file its environment names in `variable`."""
    in_container = model["services"][name]["environment"][variable]
    return host_file(model, name, in_container).read_text(encoding="utf-8").strip()


def mounted_urls(model: dict[str, Any], name: str) -> list[str]:
    """The URLs in the secrets mounted into a service (its provider keys left aside)."""
    sources = [secret["source"] for secret in model["services"][name].get("secrets", [])]
    files = [Path(model["secrets"][source]["file"]) for source in sources]
    # The provider keys' files are not written here: they hold no URL.
    texts = [file.read_text(encoding="utf-8").strip() for file in files if file.is_file()]
    return [text for text in texts if "://" in text]


# --- valid, and refused without what it needs -------------------------------------------------


def test_the_production_file_is_accepted_by_the_official_compose_binary(tmp_path: Path) -> None:
    result = run_compose(PRODUCTION, "config", "-q", home=tmp_path, env_file=EXAMPLE_ENV)

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_without_its_variables_compose_refuses_to_start_naming_one(tmp_path: Path) -> None:
    result = run_compose(PRODUCTION, "config", "-q", home=tmp_path)

    assert result.returncode != 0
    named = re.search(r"required variable (\w+) is missing a value: (.+)", result.stderr)
    assert named, result.stderr
    assert named.group(1) in required_variables()
    assert named.group(2).strip()  # and says what it is


def test_the_example_env_file_sets_every_required_variable_and_nothing_else() -> None:
    optional = {"PAYMQ_API_PUBLISH"}

    assert set(example_values()) == required_variables() | optional


def test_the_example_env_file_shows_the_url_each_url_file_holds() -> None:
    url_files = {v for v in required_variables() if URL_FILE_ON_HOST.match(v)}

    # one per broker user, and the store's
    assert len(url_files) == len(BROKER_ROLES) + 1
    assert set(example_urls()) == url_files


# --- the product alone, at the defaults' pace --------------------------------------------------


def test_the_stack_is_the_product_alone_from_the_published_image(
    services: dict[str, Service],
) -> None:
    assert set(services) == {"keys", "api", "webhooks", *WORKERS}
    for name, service in services.items():
        assert service["image"] == example_values()["PAYMQ_IMAGE"], name
        assert "build" not in service, name
        assert service["command"][0] == "paymq", name


def test_no_service_uses_the_demos_guest_user_emulators_or_chain(
    services: dict[str, Service],
) -> None:
    text = json.dumps(services)
    for demo_only in ("guest", "sandbox", "localstripe", "anvil", "devnet"):
        assert demo_only not in text, demo_only


def test_production_sets_where_things_are_and_no_demo_pace(services: dict[str, Service]) -> None:
    demo = {
        variable
        for line in DEMO.read_text(encoding="utf-8")
        .split("x-demo-pace:", 1)[1]
        .split("\n\n", 1)[0]
        .splitlines()
        if (variable := line.strip().split(":", 1)[0]).startswith("PAYMQ_")
    }
    assert demo >= {"PAYMQ_RETRY_DELAYS_MS", "PAYMQ_MAX_ATTEMPTS", "PAYMQ_BREAKER_FAILURES"}
    for name, service in services.items():
        variables = {v for v in service["environment"] if v.startswith("PAYMQ_")}
        assert variables <= WHERE_THINGS_ARE, (name, variables - WHERE_THINGS_ARE)
        assert not variables & demo, name


def test_every_setting_the_file_names_is_a_real_one() -> None:
    known = {setting.variable for setting in SETTINGS}
    named = set(re.findall(r"^\s+(PAYMQ_[A-Z0-9_]+):", PRODUCTION.read_text(), re.MULTILINE))

    assert named <= known, named - known


@pytest.mark.parametrize("name", ["keys", "api", "webhooks", *sorted(WORKERS)])
def test_each_services_environment_is_a_valid_configuration(
    model: dict[str, Any],
    services: dict[str, Service],
    name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable in [v for v in os.environ if v.startswith(("PAYMQ_", "AMQP_", "RABBITMQ_"))]:
        monkeypatch.delenv(variable)
    for variable, value in services[name]["environment"].items():
        # a secret's file, at its path on the host rather than in the container
        in_secrets = value.startswith(SECRETS_DIR)
        monkeypatch.setenv(variable, str(host_file(model, name, value)) if in_secrets else value)

    settings = Settings(_env_file=None)

    assert settings.keys.keys_dir == Path("/keys")
    connects = name != "keys"
    assert settings.broker.read_from_file("amqp_url") is connects
    assert settings.store.read_from_file("database_url") is connects


# --- a broker user per process, over TLS ------------------------------------------------------


def broker_users() -> dict[str, str]:
    """Each role's broker user, by the role's name."""
    return {role.name: role.user(Topology()) for role in broker_roles(Topology())}


def test_each_process_connects_as_its_own_broker_user_over_tls(model: dict[str, Any]) -> None:
    users = broker_users()
    seen = set()
    for name, role in BROKER_ROLES.items():
        url = urlsplit(url_of(model, name, "PAYMQ_AMQP_URL_FILE"))
        assert url.scheme == "amqps", name
        assert url.username == users[role], name
        assert url.path == "/paymq", name  # the virtual host of its own
        seen.add(url.username)
    assert len(seen) == len(BROKER_ROLES)


def test_the_keys_service_gets_no_url_for_it_never_connects(
    services: dict[str, Service],
) -> None:
    keys = services["keys"]

    assert not [variable for variable in keys["environment"] if "_URL" in variable]
    assert not keys.get("secrets")


def leaked(text: str) -> list[str]:
    """The scheme and user of each URL with a password in the text; never the password."""
    return [":".join(url.split(":", 2)[:2]) for url in URL_WITH_PASSWORD.findall(text)]


def test_no_url_with_a_password_is_in_any_services_definition_nor_in_the_env_file(
    services: dict[str, Service],
) -> None:
    # What `docker inspect` shows of each container (its environment, command, health check),
    # and the values Compose reads from the env file.
    for name, service in services.items():
        assert leaked(json.dumps(service)) == [], name
    for variable, value in example_values().items():
        assert leaked(value) == [], variable
    # The check finds the very URLs the secrets hold.
    for variable, url in example_urls().items():
        assert leaked(url), variable


def test_each_service_mounts_only_the_url_secrets_of_its_own_user(
    model: dict[str, Any],
) -> None:
    users = broker_users()
    for name, role in BROKER_ROLES.items():
        urls = [urlsplit(url) for url in mounted_urls(model, name)]
        broker = [url.username for url in urls if url.scheme.startswith("amqp")]
        store = [url for url in urls if url.scheme.startswith("postgresql")]
        assert broker == [users[role]], name
        assert len(store) == 1, name
        assert len(urls) == len(broker) + len(store), name  # no other URL


def documented_services() -> dict[str, tuple[str | None, frozenset[str]]]:
    """docs/docker.md's table of the production services: each one's broker user (None for
    none) and the secrets it mounts."""
    table = DOCS.read_text(encoding="utf-8").split(TABLE_HEADER, 1)[1].split("\n\n", 1)[0]
    found = {}
    for row in table.splitlines():
        if not row.startswith("| `"):
            continue  # the header's rule
        service, _, user, secrets = (cell.strip() for cell in row.strip().strip("|").split("|"))
        named_user = re.findall(r"`([^`]+)`", user)
        found[service.strip("`")] = (
            named_user[0] if named_user else None,
            frozenset(re.findall(r"`([^`]+)`", secrets)),
        )
    return found


def test_the_docs_table_gives_each_services_broker_user_and_secrets(
    model: dict[str, Any], services: dict[str, Service]
) -> None:
    documented = documented_services()

    assert set(documented) == set(services)
    for name, service in services.items():
        user, secrets = documented[name]
        assert secrets == {secret["source"] for secret in service.get("secrets", [])}, name
        if user is None:
            assert "PAYMQ_AMQP_URL_FILE" not in service["environment"], name
        else:
            assert urlsplit(url_of(model, name, "PAYMQ_AMQP_URL_FILE")).username == user, name


def test_no_process_declares_the_topology_its_user_may_not_configure(
    services: dict[str, Service],
) -> None:
    for name in BROKER_ROLES:
        assert services[name]["environment"]["PAYMQ_DECLARE_TOPOLOGY"] == "false", name


def test_the_store_is_reached_over_tls_with_the_server_verified(
    model: dict[str, Any],
) -> None:
    for name in BROKER_ROLES:  # every process but keys
        query = parse_qs(urlsplit(url_of(model, name, "PAYMQ_DATABASE_URL_FILE")).query)
        assert query["sslmode"] == ["verify-full"], name
        assert query["sslrootcert"], name


def test_provider_keys_are_secret_files_each_held_by_its_worker_alone(
    services: dict[str, Service],
) -> None:
    holders: dict[str, set[str]] = {}
    for name, service in services.items():
        for secret in service.get("secrets", []):
            holders.setdefault(secret["source"], set()).add(name)
    assert holders["stripe_api_key"] == {"worker-card"}
    assert holders["ethereum_hot_wallet_key"] == {"worker-digital-currency"}
    card = services["worker-card"]["environment"]
    assert card["PAYMQ_STRIPE_API_KEY_FILE"] == "/run/secrets/stripe_api_key"
    assert json.loads(card["PAYMQ_CARD_PROVIDERS"]) == ["stripe"]


# --- hardened, scalable, watched ---------------------------------------------------------------


def test_every_container_is_hardened_like_the_demos(services: dict[str, Service]) -> None:
    for name, service in services.items():
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert service["security_opt"] == ["no-new-privileges:true"], name
        assert service["init"] is True, name


def test_workers_scale_and_drain_and_their_metrics_port_is_declared(
    services: dict[str, Service],
) -> None:
    drain_s = WorkerSettings.model_fields["shutdown_grace_s"].default
    for name in WORKERS:
        worker = services[name]
        assert "container_name" not in worker, name
        assert not worker.get("ports"), name
        assert int(worker["stop_grace_period"].removesuffix("s")) > drain_s, name
        assert worker["expose"] == [worker["environment"]["PAYMQ_METRICS_PORT"]], name
        assert worker["healthcheck"]["test"][:2] == ["CMD", "python"], name
        assert worker["depends_on"]["keys"]["condition"] == "service_completed_successfully"


def test_the_api_is_published_on_the_hosts_loopback_for_a_tls_proxy(
    services: dict[str, Service],
) -> None:
    [port] = services["api"]["ports"]
    assert (port["host_ip"], port["published"], port["target"]) == ("127.0.0.1", "8080", 8080)
    assert "127.0.0.1:8080/readyz" in services["api"]["healthcheck"]["test"][-1]
