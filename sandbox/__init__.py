"""paymq sandbox: an HTTP emulator of a payment provider (card charges, digital-currency payouts).

It stands in for the outside world in tests, the demo and benchmarks. The pure core
(`testvalues`, `fields`, `validation`, `faults`, `idempotency`, `ledger`, `state`) knows nothing
of HTTP; `app` and `payments` map HTTP onto it; `server` runs it; `client` drives its control API.
The full REST API is documented in docs/sandbox.md.
"""
