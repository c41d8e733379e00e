"""The shared core: sales channels, the inbound-event inbox, the audit trail, job enqueueing, roles.

Nothing here may import the domain apps (oms.orders, inventory, ...): they build on it, not the reverse.
"""
