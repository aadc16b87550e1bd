"""The only place paymq imports pika. Everything else sees common.envelope's plain messages
and common.errors' exceptions (pika's are translated in common/amqp/errors.py)."""
