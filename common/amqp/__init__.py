"""The only place paymq imports pika. Everything else sees common.envelope's plain messages
and common.errors' exceptions."""
