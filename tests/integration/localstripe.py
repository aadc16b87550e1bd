"""localstripe for the tests: `paymq localstripe` in a child process on a free port, with its
state in memory, and a view of its PaymentIntents that does not go through paymq's adapter."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from paymq_tools.processes import free_port

API_KEY = "sk_test_paymq_tests"
_READY_TIMEOUT_S = 30.0


class LocalStripe:
    def __init__(self, log_path: Path) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._http = requests.Session()
        self._http.headers["Authorization"] = f"Bearer {API_KEY}"

    def __enter__(self) -> LocalStripe:
        port = self.url.rsplit(":", 1)[1]
        with self._log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "paymq", "localstripe", "--port", port],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_ready()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._http.close()
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"localstripe exited:\n{self._log_path.read_text()}")
            try:
                if self._http.get(f"{self.url}/v1/balance", timeout=1).status_code < 500:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"localstripe did not answer within {_READY_TIMEOUT_S} s")

    def intents_for(self, payment_id: str) -> list[dict[str, Any]]:
        """Every PaymentIntent whose metadata names this payment, from the plain list API."""
        found: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            params = {"limit": "100"} | ({"starting_after": after} if after else {})
            page = self._http.get(f"{self.url}/v1/payment_intents", params=params, timeout=5)
            page.raise_for_status()
            body = page.json()
            found += [
                intent
                for intent in body["data"]
                if intent["metadata"].get("paymq_payment_id") == payment_id
            ]
            if not body["has_more"]:
                return found
            after = body["data"][-1]["id"]

    def authenticate(self, intent_id: str, client_secret: str, *, success: bool) -> int:
        """What the payer's browser does for 3-D Secure; returns the HTTP status."""
        answer = self._http.post(
            f"{self.url}/v1/payment_intents/{intent_id}/_authenticate",
            data={"client_secret": client_secret, "success": "true" if success else "false"},
            timeout=5,
        )
        return answer.status_code
