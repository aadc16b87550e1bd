"""A small synchronous client for the sandbox's control API and ledger, for tests and the demo.

Each call opens and closes its own connection: control calls are rare, and nothing is left
open for a test to leak.
"""

from typing import Any

import requests


class SandboxControlError(RuntimeError):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"sandbox answered {status}: {body}")
        self.status = status
        self.body = body


class SandboxControl:
    def __init__(self, base_url: str, timeout_s: float = 5.0) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout_s = timeout_s

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health")

    def reset(self) -> None:
        self._call("POST", "/_sandbox/reset")

    def config(self) -> dict[str, Any]:
        return self._call("GET", "/_sandbox/config")

    def set_latency(self, latency_ms: int) -> None:
        self._call("PUT", "/_sandbox/config", json={"latency_ms": latency_ms})

    def add_fault(
        self,
        action: str,
        *,
        times: int = 1,
        reference: str | None = None,
        path: str | None = None,
        status: int = 500,
        retry_after_s: int = 1,
        delay_s: float = 30.0,
    ) -> dict[str, Any]:
        rule: dict[str, Any] = {
            "action": action,
            "times": times,
            "status": status,
            "retry_after_s": retry_after_s,
            "delay_s": delay_s,
        }
        if reference is not None:
            rule["reference"] = reference
        if path is not None:
            rule["path"] = path
        return self._call("POST", "/_sandbox/faults", json=rule)

    def clear_faults(self) -> None:
        self._call("DELETE", "/_sandbox/faults")

    def faults(self) -> list[dict[str, Any]]:
        rules: list[dict[str, Any]] = self._call("GET", "/_sandbox/faults")["faults"]
        return rules

    def effects(self, reference: str | None = None) -> list[dict[str, Any]]:
        params = None if reference is None else {"reference": reference}
        effects: list[dict[str, Any]] = self._call("GET", "/v1/effects", params=params)["effects"]
        return effects

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        response = requests.request(
            method, self._base_url + path, json=json, params=params, timeout=self._timeout_s
        )
        if response.status_code >= 400:
            raise SandboxControlError(response.status_code, response.text)
        result: dict[str, Any] = response.json()
        return result
