"""The order domain: customers, addresses, orders and their lines, the state table, intake and backfill.

Writes live in services.py; reads in selectors.py; RQ entry points in jobs.py.
"""
