"""The payment store: who may act on a payment, what happened to it, and the result to repeat.

SQLite (a file, WAL mode) by default, PostgreSQL for several hosts, through SQLAlchemy Core: the
same code path for both.
"""
