"""Per-channel payment workers: consume -> verify -> execute -> publish result -> ack."""
