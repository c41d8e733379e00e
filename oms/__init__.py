"""The OMS project: settings, root URLs, the shared core (oms.core) and the order domain (oms.orders)."""
