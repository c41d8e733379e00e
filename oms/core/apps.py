from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "oms.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from oms.core import auth  # noqa: F401  # connects the receivers that expire cached permissions
