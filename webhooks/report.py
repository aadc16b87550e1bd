"""What `paymq webhooks status` shows: deliveries by endpoint and state, how long the oldest
pending one has waited, and the latest failures with their last error (never a body)."""

from __future__ import annotations

from typing import Any

from webhooks.deliveries import DeliveryState, WebhookDeliveries


def delivery_report(deliveries: WebhookDeliveries, *, now_ms: int, failures: int) -> dict[str, Any]:
    endpoints: dict[str, dict[str, Any]] = {}
    for row in deliveries.counts():
        entry = endpoints.setdefault(
            row["endpoint_id"],
            {state.value: 0 for state in DeliveryState} | {"oldest_pending_age_s": None},
        )
        entry[row["state"]] = int(row["count"])
        if row["state"] == DeliveryState.PENDING.value:
            entry["oldest_pending_age_s"] = round((now_ms - int(row["oldest_ms"])) / 1000, 1)
    recent = [
        {
            "event_id": row["event_id"],
            "endpoint_id": row["endpoint_id"],
            "payment_id": row["payment_id"],
            "attempts": row["attempts"],
            "last_error": row["last_error"],
        }
        for row in deliveries.recent_failures(failures)
    ]
    return {"endpoints": endpoints, "recent_failures": recent}


def render_report(report: dict[str, Any]) -> str:
    if not report["endpoints"]:
        return "no webhook deliveries yet"
    states = [state.value for state in DeliveryState]
    lines = [f"{'endpoint':20} " + " ".join(f"{s:>10}" for s in states) + "  oldest pending"]
    for endpoint_id, entry in report["endpoints"].items():
        age = entry["oldest_pending_age_s"]
        shown = "-" if age is None else f"{age:.0f} s"
        counts = " ".join(f"{entry[s]:>10}" for s in states)
        lines.append(f"{endpoint_id:20} {counts}  {shown}")
    if report["recent_failures"]:
        lines.append("")
        lines.append("recent failures (paymq webhooks redeliver --failed):")
        lines.extend(
            f"  {f['event_id']} -> {f['endpoint_id']}: {f['attempts']} attempts, {f['last_error']}"
            for f in report["recent_failures"]
        )
    return "\n".join(lines)
