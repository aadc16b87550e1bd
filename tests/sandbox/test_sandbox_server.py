"""Running the sandbox: the foreground `serve` entry point and the test thread's lifecycle."""

import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from sandbox.client import SandboxControl
from sandbox.server import SandboxThread

CHARGE = {
    "reference": "ref-server",
    "amount_minor": 100,
    "currency": "EUR",
    "source": {"type": "token", "token": "tok_visa"},
}


def test_serve_announces_its_real_port_and_exits_cleanly_on_sigterm() -> None:
    command = [sys.executable, "-m", "sandbox", "--port", "0", "--latency-ms", "3"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = line.strip().rsplit(" ", 1)[-1]
        try:
            assert url.startswith("http://127.0.0.1:")
            assert not url.endswith(":0")
            assert SandboxControl(url).health() == {"status": "ok"}
            assert SandboxControl(url).config() == {"latency_ms": 3}
        finally:
            process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0


def test_thread_url_is_unavailable_before_start() -> None:
    with pytest.raises(RuntimeError, match="not running"):
        _ = SandboxThread().url


def test_thread_starts_with_the_given_latency_and_frees_its_port_on_stop() -> None:
    with SandboxThread(latency_ms=150) as sandbox:
        url = sandbox.url
        started = time.monotonic()
        response = requests.post(
            url + "/v1/charges", json=CHARGE, headers={"Idempotency-Key": "k"}, timeout=5
        )
        assert response.status_code == 201
        assert time.monotonic() - started >= 0.15
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url + "/health", timeout=5)


def test_thread_cannot_be_started_twice() -> None:
    with SandboxThread() as sandbox, pytest.raises(RuntimeError, match="once"):
        sandbox.start()


def test_stop_ends_an_injected_delay_and_still_answers_the_waiting_client() -> None:
    sandbox = SandboxThread()
    control = SandboxControl(sandbox.start())
    reference = f"ref-{uuid.uuid4()}"
    control.add_fault("timeout_after_effect", reference=reference, delay_s=600)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(
            requests.post,
            sandbox.url + "/v1/charges",
            json=CHARGE | {"reference": reference},
            headers={"Idempotency-Key": "k"},
            timeout=60,
        )
        deadline = time.monotonic() + 10
        while not control.effects(reference):  # the handler now sits in its delay
            assert time.monotonic() < deadline
        started = time.monotonic()
        sandbox.stop()
        assert time.monotonic() - started < 5
        assert pending.result(timeout=10).status_code == 201
