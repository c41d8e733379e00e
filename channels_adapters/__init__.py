"""Channel adapters: one module or package per marketplace, behind the contract in base.py.

Adapters speak the vendor's wire format and return plain dataclasses; they never import Django models.
"""
