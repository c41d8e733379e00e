"""Carrier adapters: one module or package per carrier behind the contract in carriers/base.py."""
