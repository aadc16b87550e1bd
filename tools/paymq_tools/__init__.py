"""paymq's development tools: the demo, the benchmarks, the fault-injection suite, the local
services they start, and the contract exporter. Not part of the product: the `paymq` wheel and
the production image do not carry them. Installed, they add their commands to `paymq`."""
