"""localstripe for the tests: `paymq localstripe` in a child process on a free port, with its
state in memory, and a view of its PaymentIntents that does not go through paymq's adapter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests

from paymq_tools.launch import Child, launch, paymq_command
from paymq_tools.processes import free_port

API_KEY = "sk_test_paymq_tests"
_READY_TIMEOUT_S = 30.0


class LocalStripe:
    def __init__(self, log_path: Path) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        self._log_path = log_path
        self._child: Child | None = None
        self._http = requests.Session()
        self._http.headers["Authorization"] = f"Bearer {API_KEY}"

    def __enter__(self) -> LocalStripe:
        port = self.url.rsplit(":", 1)[1]
        self._child = launch(
            "localstripe", paymq_command("localstripe", "--port", port), log_path=self._log_path
        )
        self._child.wait_until(self._answers, what="answering", timeout_s=_READY_TIMEOUT_S)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._http.close()
        if self._child is not None:
            self._child.stop()

    def _answers(self) -> bool:
        try:
            return self._http.get(f"{self.url}/v1/balance", timeout=1).status_code < 500
        except requests.ConnectionError:
            return False

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
