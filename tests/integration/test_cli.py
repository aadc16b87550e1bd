"""The `paymq` command as an operator runs it: real subprocesses, explicit environments."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from common.amqp.admin import BrokerAdmin
from common.clock import SystemClock
from common.errors import ConfigurationError
from common.keygen import init_keys
from common.models import PaymentResult
from common.settings import Settings
from common.subscriber import ResultStream
from paymq_tools.processes import settings_env
from producer.producer import Producer
from store.records import Acquired, NewPayment, OutcomeRecord
from store.states import State
from tests.integration.conftest import RunningWorker
from tests.integration.helpers import (
    bound_queues,
    card_draft,
    cli_env,
    collect_results,
    drain,
    require_rabbitmqctl,
    run_cli,
    wait_until,
)
from workers.main import build_store

pytestmark = pytest.mark.integration


def _output(completed: subprocess.CompletedProcess[str]) -> str:
    return completed.stdout + completed.stderr


def test_help_lists_every_command(tmp_path: Path) -> None:
    completed = run_cli("--help", env=cli_env(), cwd=tmp_path)
    assert completed.returncode == 0, _output(completed)
    for command in ("worker", "sandbox", "publish", "demo", "keys", "topology", "results"):
        assert command in completed.stdout


def test_demo_runs_end_to_end_and_every_payment_gets_its_result(
    amqp_url: str, tmp_path: Path
) -> None:
    completed = run_cli("demo", env=cli_env(AMQP_URL=amqp_url), cwd=tmp_path, timeout_s=180)
    assert completed.returncode == 0, _output(completed)
    assert "got the result they should" in completed.stdout
    # Its ETH and USDC payouts ran on a local chain (anvil and solc-js from make install)
    # and landed once each.
    assert "chain: 4 transfers landed for 4 payouts that should pay" in completed.stdout
    assert "Traceback" not in _output(completed)


def test_demo_without_a_broker_says_how_to_get_one_and_exits_2(tmp_path: Path) -> None:
    # Given no broker at the URL, and neither docker nor rabbitmq-server on the PATH
    env = cli_env(
        PAYMQ_AMQP_URL="amqp://guest:guest@127.0.0.1:1/%2F",
        PATH=str(Path(sys.executable).parent),
    )
    # When the demo starts
    completed = run_cli("demo", env=env, cwd=tmp_path, timeout_s=60)
    # Then it explains what to do, without a traceback
    assert completed.returncode == 2, _output(completed)
    assert "No RabbitMQ answers" in _output(completed)
    assert "Traceback" not in _output(completed)


def test_results_tail_prints_a_result_published_after_it_started(
    topology: Settings,
    start_worker: Callable[..., RunningWorker],
    producer: Producer,
    tmp_path: Path,
) -> None:
    require_rabbitmqctl()
    start_worker("card")
    results_exchange = topology.broker.topology().results_exchange
    before = set(bound_queues(results_exchange))
    # Given `paymq results tail` listening
    args = ("results", "tail", "--json", "--count", "1", "--timeout-s", "20")
    tail = subprocess.Popen(
        [sys.executable, "-m", "paymq", *args],
        env=settings_env(topology, dict(os.environ)),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # (its private queue bound to the results exchange is what listening means)
        wait_until(
            lambda: tail.poll() is not None or set(bound_queues(results_exchange)) - before,
            timeout_s=30,
            what="the tail's queue",
        )
        assert tail.poll() is None, tail.communicate()
        # When a payment is paid
        request, message = producer.prepare(card_draft())
        producer.publish(message)
        stdout, stderr = tail.communicate(timeout=30)
    finally:
        if tail.poll() is None:
            tail.kill()
            tail.communicate()
    # Then the tail printed its verified result as one JSON line, and stopped
    assert tail.returncode == 0, stderr
    [line] = stdout.splitlines()
    result = PaymentResult.model_validate_json(line)
    assert (result.payment_id, result.status) == (request.payment_id, "succeeded")


def test_keys_init_creates_a_key_set_once(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    env = cli_env(PAYMQ_KEYS_DIR=str(keys_dir))
    # When keys are initialised in an empty directory
    first = run_cli("keys", "init", env=env, cwd=tmp_path)
    assert first.returncode == 0, _output(first)
    # Then the producer, worker and card sealing keys exist, the private ones owner-only
    for key_id in ("producer-1", "worker-1", "card-seal-1"):
        assert f"created {key_id}" in first.stdout
        assert (keys_dir / "private" / f"{key_id}.pem").stat().st_mode & 0o777 == 0o600
        assert json.loads((keys_dir / "trusted" / f"{key_id}.json").read_text())["status"] == (
            "active"
        )
    files = {path: path.read_bytes() for path in keys_dir.rglob("*") if path.is_file()}
    # and initialising again changes nothing
    again = run_cli("keys", "init", env=env, cwd=tmp_path)
    assert again.returncode == 0, _output(again)
    assert "keys already present" in again.stdout
    assert {path: path.read_bytes() for path in keys_dir.rglob("*") if path.is_file()} == files


def test_keys_init_makes_the_directories_of_the_api_keys_and_webhook_endpoints(
    tmp_path: Path,
) -> None:
    # Given a deployment that keeps the API keys and the webhook endpoints in directories of
    # their own, each mounted into the one process that reads it
    keys_dir = tmp_path / "keys"
    env = cli_env(
        PAYMQ_KEYS_DIR=str(keys_dir),
        PAYMQ_API_KEYS_FILE=str(keys_dir / "api" / "api-keys.json"),
        PAYMQ_WEBHOOK_ENDPOINTS_FILE=str(keys_dir / "webhooks" / "webhooks.json"),
    )
    # When keys are initialised
    completed = run_cli("keys", "init", env=env, cwd=tmp_path)
    assert completed.returncode == 0, _output(completed)
    # Then both directories exist, owner-only, and empty until a key or an endpoint is added
    for directory in (keys_dir / "api", keys_dir / "webhooks"):
        assert directory.stat().st_mode & 0o777 == 0o700, directory
        assert not any(directory.iterdir()), directory


def test_publish_refuses_an_amount_more_precise_than_its_currency(
    topology: Settings, admin: BrokerAdmin, tmp_path: Path
) -> None:
    env = settings_env(topology, dict(os.environ))
    args = ("publish", "--amount", "10.505", "--currency", "USD", "--token", "tok_visa")
    completed = run_cli(*args, env={**env, "COLUMNS": "200"}, cwd=tmp_path)
    assert completed.returncode != 0
    output = " ".join(_output(completed).split())
    assert "USD allows 2 decimal places; 10.505 has more precision" in output
    assert "Traceback" not in output
    assert admin.stats(topology.broker.topology().work_queue("card")).messages == 0


def test_publish_refuses_to_sign_with_a_retired_key_and_publishes_nothing(
    topology: Settings, admin: BrokerAdmin, tmp_path: Path
) -> None:
    # Given a keyring of its own whose producer key, the one publish signs with, is retired
    keys_dir = tmp_path / "keys"
    init_keys(
        keys_dir, producer_key_id="producer-1", worker_key_id="worker-1", sealing_key_id="seal-1"
    )
    env = settings_env(topology.replace(keys_dir=keys_dir), dict(os.environ))
    retired = run_cli("keys", "retire", "producer-1", env=env, cwd=tmp_path)
    assert retired.returncode == 0, _output(retired)

    # When a payment is published
    args = ("publish", "--amount", "10.50", "--token", "tok_visa")
    completed = run_cli(*args, env={**env, "COLUMNS": "200"}, cwd=tmp_path)

    # Then publish refuses, saying why and what to do, and nothing reached the work queue
    assert completed.returncode == 1, _output(completed)
    output = " ".join(_output(completed).split())
    assert "key 'producer-1' is retired in the keyring" in output
    assert "PAYMQ_PRODUCER_KEY_ID" in output
    assert "published payment" not in output
    assert "Traceback" not in output
    assert admin.stats(topology.broker.topology().work_queue("card")).messages == 0


@pytest.mark.parametrize(
    "reference",
    ["order 4111111111111111", "order-4111-1111-1111-1111"],
    ids=["not-a-valid-idempotency-key-either", "valid-otherwise"],
)
def test_publish_refuses_a_card_number_in_a_reference_without_printing_it(
    topology: Settings, admin: BrokerAdmin, tmp_path: Path, reference: str
) -> None:
    env = settings_env(topology, dict(os.environ))
    args = ("publish", "--amount", "10.50", "--token", "tok_visa", "--reference", reference)
    completed = run_cli(*args, env={**env, "COLUMNS": "200"}, cwd=tmp_path)
    assert completed.returncode == 1, _output(completed)
    output = " ".join(_output(completed).split())
    assert output.startswith("invalid:")
    assert "4111" not in output.replace("****1111", "")
    assert "Traceback" not in output
    assert admin.stats(topology.broker.topology().work_queue("card")).messages == 0


@pytest.mark.parametrize("source", ["file", "stdin"])
def test_publish_takes_card_data_from_a_file_or_standard_input_never_the_command_line(
    topology: Settings, admin: BrokerAdmin, tmp_path: Path, source: str
) -> None:
    # Given card data in a file, or piped in
    card = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
    card_file = tmp_path / "card.json"
    card_file.write_text(json.dumps(card))
    card_file.chmod(0o600)
    where = str(card_file) if source == "file" else "-"
    args = ["publish", "--amount", "10.50", "--card", where, "--reference", "order-card-1"]
    # When it is published
    completed = subprocess.run(
        [sys.executable, "-m", "paymq", *args],
        env={**settings_env(topology, dict(os.environ)), "COLUMNS": "200"},
        cwd=tmp_path,
        input=card_file.read_text() if source == "stdin" else "",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Then the payment is published sealed, and the card number is not printed back
    assert completed.returncode == 0, _output(completed)
    assert "published payment" in completed.stdout
    assert "4242424242424242" not in _output(completed)
    queue = topology.broker.topology().work_queue("card")
    wait_until(lambda: admin.stats(queue).messages == 1, what="the payment in the work queue")


def test_publish_with_json_prints_one_object_naming_the_payment_it_published(
    topology: Settings, admin: BrokerAdmin, tmp_path: Path
) -> None:
    env = {**settings_env(topology, dict(os.environ)), "COLUMNS": "200"}
    args = ("publish", "--amount", "10.50", "--token", "tok_visa", "--reference", "order-j1")

    completed = run_cli(*args, "--json", env=env, cwd=tmp_path)

    assert completed.returncode == 0, _output(completed)
    [line] = completed.stdout.splitlines()
    printed = json.loads(line)
    assert printed["published"] is True
    assert (printed["line"], printed["error"], printed["channel"]) == (None, None, "card")
    assert (printed["merchant_reference"], printed["idempotency_key"]) == ("order-j1", "order-j1")
    [queued] = drain(admin, topology.broker.topology().work_queue("card"))
    assert queued.message_id == printed["message_id"]
    assert json.loads(queued.body)["payment_id"] == printed["payment_id"]


def test_publish_has_no_card_number_or_cvc_option(tmp_path: Path) -> None:
    completed = run_cli("publish", "--help", env=cli_env(), cwd=tmp_path)
    assert completed.returncode == 0, _output(completed)
    assert "--card-number" not in completed.stdout
    assert "--cvc" not in completed.stdout


def test_topology_show_prints_every_name_and_argument(tmp_path: Path) -> None:
    prefix = "cli-show"
    env = cli_env(PAYMQ_TOPOLOGY_PREFIX=prefix, PAYMQ_RETRY_DELAYS_MS="[100,2000]")
    completed = run_cli("topology", "show", env=env, cwd=tmp_path)
    assert completed.returncode == 0, _output(completed)
    lines = completed.stdout.splitlines()
    assert f"exchange {prefix}.requests (direct)" in lines
    assert f"exchange {prefix}.retry.2000ms (fanout)" in lines
    assert f"binding  {prefix}.requests -[card]-> {prefix}.work.card" in lines
    [work] = [line for line in lines if line.startswith(f"queue    {prefix}.work.card ")]
    assert "'x-queue-type': 'quorum'" in work
    assert "'x-delivery-limit': 100" in work
    [retry] = [line for line in lines if line.startswith(f"queue    {prefix}.retry.2000ms ")]
    assert "'x-message-ttl': 2000" in retry
    assert f"'x-dead-letter-exchange': '{prefix}.requests'" in retry


def test_topology_delete_removes_the_webhooks_queue_too(
    topology: Settings, admin: BrokerAdmin, tmp_path: Path
) -> None:
    # Given the topology declared, and the queue only `paymq webhooks run` declares
    declared = topology.broker.topology()
    admin.declare_queue(declared.webhooks_queue_spec(), declared.webhooks_binding())
    names = [*(queue.name for queue in declared.queues()), declared.webhooks_queue]
    assert _existing_queues(topology.broker.amqp_url, names) == names
    env = cli_env(**settings_env(topology, {}))

    # When an operator deletes the topology
    completed = run_cli("topology", "delete", "--yes", env=env, cwd=tmp_path)

    # Then no queue of the prefix is left, and deleting again (nothing there) is no error
    assert completed.returncode == 0, _output(completed)
    assert _existing_queues(topology.broker.amqp_url, names) == []
    again = run_cli("topology", "delete", "--yes", env=env, cwd=tmp_path)
    assert again.returncode == 0, _output(again)


def _existing_queues(amqp_url: str, names: list[str]) -> list[str]:
    """Those of `names` the broker has; a passive declare of a missing queue closes its
    channel, so each is asked on a connection of its own."""
    found = []
    for name in names:
        with BrokerAdmin(amqp_url, name="paymq-test-probe") as probe:
            try:
                probe.stats(name)
            except ConfigurationError:
                continue
            found.append(name)
    return found


def test_top_shows_queue_depths_payments_by_state_and_who_is_in_doubt(
    topology: Settings,
    start_worker: Callable[..., RunningWorker],
    producer: Producer,
    results: ResultStream,
    tmp_path: Path,
) -> None:
    # Given three payments done by a worker, and one put in doubt
    start_worker("card")
    for amount in ("1.00", "2.00", "3.00"):
        producer.publish(producer.prepare(card_draft("tok_visa", amount=amount))[1])
    collect_results(results, 3, timeout_s=30)
    store = build_store(topology)
    claims = store.claims
    doubtful = NewPayment(
        payment_id=str(uuid.uuid4()),
        scope="shop",
        idempotency_key="k-doubt",
        request_hash="h",
        request_message_id="m-doubt",
        channel="card",
        merchant_reference="order-doubt",
        amount_minor=500,
        currency="USD",
        payment_created_ms=SystemClock().now_ms(),
    )
    claim = claims.claim(doubtful)
    assert isinstance(claim, Acquired)
    claims.finish(
        doubtful.payment_id,
        OutcomeRecord(
            State.IN_DOUBT, 3, True, code="provider_timeout", next_check_ms=SystemClock().now_ms()
        ),
        None,
        token=claim.token,
    )
    store.close()
    env = cli_env(**settings_env(topology, {}))

    # When an operator asks for one frame
    completed = run_cli("top", "--once", "--json", env=env, cwd=tmp_path, timeout_s=60)

    # Then it shows every queue with its consumers, the states, and the payment in doubt
    assert completed.returncode == 0, _output(completed)
    frame = json.loads(completed.stdout)
    work_queue = topology.broker.topology().work_queue("card")
    assert frame["queues"][work_queue] == [0, 1]  # empty, one worker consuming
    assert set(frame["queues"]) == {queue.name for queue in topology.broker.topology().queues()}
    assert frame["states"] == {"succeeded": 3, "in_doubt": 1}
    [entry] = frame["in_doubt"]
    assert (entry["payment_id"], entry["code"], entry["channel"]) == (
        doubtful.payment_id,
        "provider_timeout",
        "card",
    )


def test_top_says_so_when_the_topology_is_not_declared(tmp_path: Path, amqp_url: str) -> None:
    env = cli_env(
        AMQP_URL=amqp_url,
        PAYMQ_TOPOLOGY_PREFIX=f"never-{uuid.uuid4().hex[:8]}",
        PAYMQ_DATABASE_URL=f"sqlite:///{tmp_path / 'paymq.db'}",
    )
    run_cli("db", "upgrade", env=env, cwd=tmp_path)

    completed = run_cli("top", "--once", env=env, cwd=tmp_path, timeout_s=60)

    assert completed.returncode == 1
    assert "does not exist" in completed.stderr
    assert "Traceback" not in _output(completed)


def test_config_show_masks_the_password_of_every_url(tmp_path: Path) -> None:
    # Given a store and a broker reached with passwords, and a Stripe key
    env = cli_env(
        PAYMQ_DATABASE_URL="postgresql+psycopg://paymq:db-s3cret@db.internal:5432/paymq",
        PAYMQ_AMQP_URL="amqp://paymq:amqp-s3cret@rabbit.internal:5672/%2F",
        PAYMQ_STRIPE_API_KEY="sk_test_key-s3cret",
    )
    # When the operator prints the configuration
    completed = run_cli("config", "show", env=env, cwd=tmp_path, timeout_s=60)
    # Then no secret is shown, and what is shown still says where things are
    assert completed.returncode == 0, _output(completed)
    assert "s3cret" not in _output(completed)
    assert "PAYMQ_DATABASE_URL=postgresql+psycopg://paymq:***@db.internal:5432/paymq" in (
        completed.stdout
    )
    assert "PAYMQ_AMQP_URL=amqp://paymq:***@rabbit.internal:5672/%2F" in completed.stdout
