"""Scheduled jobs for `manage.py rqcron oms.cron` (RQ's cron scheduler only enqueues; workers run them).

Run exactly one cron process per deployment.
"""

from rq import cron

from dispatch import jobs as dispatch_jobs
from inventory import jobs as inventory_jobs
from inventory import jobs_catalog as inventory_catalog_jobs
from oms.orders import jobs as order_jobs

cron.register(order_jobs.backfills_due, queue_name="low", interval=60, name="orders-backfills-due")
cron.register(order_jobs.inbox_sweep, queue_name="low", interval=60, name="orders-inbox-sweep")
# The fan-out runs on every stock change; this pass retries pushes that failed and wakes one that was lost.
cron.register(inventory_jobs.stock_fanout, queue_name="high", interval=60, name="inventory-fanout-backstop")
cron.register(inventory_jobs.stock_drift_sweep, queue_name="low", interval=60, name="inventory-drift-sweep")
# Enqueues a reconciliation ("low" queue) of each channel whose reconcile_every_minutes has passed.
cron.register(inventory_jobs.reconciles_due, queue_name="low", interval=60, name="inventory-reconciles-due")
# Catalog exports (files holding the whole catalog) and their records are deleted after a week.
cron.register(
    inventory_catalog_jobs.catalog_exports_prune, queue_name="low", interval=24 * 3600, name="inventory-exports-prune"
)
# Tracking written back and "on its way" e-mails whose job was lost or ran out of retries.
cron.register(
    dispatch_jobs.shipments_after_ship_sweep, queue_name="low", interval=300, name="dispatch-after-ship-backstop"
)
# Each parcel is asked about every TRACKING_POLL_MINUTES; a run takes the most overdue 1,000.
cron.register(
    dispatch_jobs.tracking_poll, queue_name="low", interval=900, job_timeout=1800, name="dispatch-tracking-poll"
)
cron.register(dispatch_jobs.stuck_orders_check, queue_name="low", interval=3600, name="dispatch-stuck-orders")
# Orders a packer held too long without scanning go back to the queue.
cron.register(dispatch_jobs.pack_sessions_expire, queue_name="default", interval=60, name="dispatch-pack-expiry")
# Label purchases and print jobs whose job was lost (Redis down, worker killed) are enqueued again.
cron.register(dispatch_jobs.dispatch_sweep, queue_name="default", interval=60, name="dispatch-sweep")
cron.register(dispatch_jobs.print_jobs_refresh, queue_name="low", interval=60, name="dispatch-print-states")
