"""The payment store: who may act on a payment, what happened to it, and the result to repeat.

SQLite (a file, WAL mode) by default, PostgreSQL for several hosts, through SQLAlchemy Core: the
same code path for both. One module per job: claims.py (the worker's path), checks.py (the
reconciler's), views.py (read only, for the API and the CLI), over rows.py (the steps they
share) and records.py (the values they take and give); outage.py maps the database's failures
for every one of them.
"""
