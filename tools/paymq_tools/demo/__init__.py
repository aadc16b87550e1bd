"""`paymq demo`: the whole system end to end on the configured broker (run.py), with its batch of
cases (cases.py, cards.py, payouts.py, badmessages.py, batch.py), its chain (chain.py), the
providers' records (records.py), the webhook receiver (hooks.py) and the verdict (report.py)."""
