from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "oms.orders"
    label = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        # Registers the inbox work list, so that a worker's drainer job finds it by name.
        from oms.orders import services  # noqa: F401
