"""Payment providers: the outside world, each behind the small interfaces in base.py."""
