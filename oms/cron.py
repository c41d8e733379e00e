"""Scheduled jobs for `manage.py rqcron oms.cron` (RQ's cron scheduler only enqueues; workers run them).

Run exactly one cron process per deployment.
"""

from rq import cron

from inventory import jobs as inventory_jobs
from oms.orders import jobs as order_jobs

cron.register(order_jobs.backfills_due, queue_name="low", interval=60, name="orders-backfills-due")
cron.register(order_jobs.inbox_sweep, queue_name="low", interval=60, name="orders-inbox-sweep")
# The fan-out runs on every stock change; this pass retries pushes that failed and wakes one that was lost.
cron.register(inventory_jobs.stock_fanout, queue_name="high", interval=60, name="inventory-fanout-backstop")
cron.register(inventory_jobs.stock_drift_sweep, queue_name="low", interval=60, name="inventory-drift-sweep")
# Enqueues a reconciliation ("low" queue) of each channel whose reconcile_every_minutes has passed.
cron.register(inventory_jobs.reconciles_due, queue_name="low", interval=60, name="inventory-reconciles-due")
