"""`paymq bench` (run.py: traffic.py, accounting.py, report.py) and `paymq bench-chain`
(chain.py): figures measured through the real pipeline."""
