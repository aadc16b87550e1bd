"""In-memory stand-ins for paymq's I/O seams, for unit tests only (never shipped)."""
