"""Dispatch: the packing queue, batches, shipments and labels, printers, tracking and stuck-order checks."""
