"""The `paymq` command: the entry point that builds settings and runs producers, workers, the
sandbox provider, the demo and the benchmark."""
