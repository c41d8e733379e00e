"""Read-only views over the other apps: the operations dashboard now; analytics, exports and feeds later.

Nothing here writes.
"""
