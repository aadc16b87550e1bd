"""Webhook delivery (`paymq webhooks run`, docs/webhooks.md): verified result events POSTed to
registered URLs, signed (Standard Webhooks), retried on a schedule until delivered or given up.

    endpoints.py   the endpoints file: URLs, secrets, filters
    schedule.py    when the next attempt is due (pure)
    deliveries.py  one row per event and endpoint in the payment store: state, attempts, lease
    sender.py      one HTTP attempt -> an AttemptOutcome
    intake.py      consume the webhooks queue: verify, store the deliveries, then ack
    dispatcher.py  claim due deliveries and send them from a small thread pool
    service.py     the process: builds the parts from the settings, runs until SIGTERM
"""
