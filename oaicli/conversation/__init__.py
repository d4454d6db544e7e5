"""Sessions: the SQLite store, locks, token counting, the history budget, one turn."""
