"""Scheduled jobs for `manage.py rqcron oms.cron` (RQ's cron scheduler only enqueues; workers run them).

Run exactly one cron process per deployment.
"""

from rq import cron

from oms.orders import jobs as order_jobs

cron.register(order_jobs.backfills_due, queue_name="low", interval=60, name="orders-backfills-due")
cron.register(order_jobs.inbox_sweep, queue_name="low", interval=60, name="orders-inbox-sweep")
