"""Inventory permissions for the staff roles of orders.0002_roles."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLES = {
    "Admin": None,  # every permission of the inventory app, and alerts
    "Manager": [
        "core.view_alerts",
        "inventory.view_stock",
        "inventory.view_product",
        "inventory.view_variant",
        "inventory.change_variant",
        "inventory.receive_stock",
        "inventory.adjust_stock",
        "inventory.import_catalog",
        "inventory.view_channellisting",
        "inventory.change_channellisting",
        "inventory.view_stockmismatch",
        "inventory.change_stockmismatch",
        "inventory.view_reconcilerun",
        "inventory.add_reconcilerun",
    ],
    "Warehouse": [
        "core.view_alerts",
        "inventory.view_stock",
        "inventory.view_product",
        "inventory.view_variant",
        "inventory.receive_stock",
        "inventory.adjust_stock",
    ],
}


def grant(apps, schema_editor):
    for app_config in apps.get_app_configs():
        original = getattr(app_config, "models_module", None)
        app_config.models_module = original or True
        try:
            create_permissions(app_config, apps=apps, verbosity=0)
        finally:
            app_config.models_module = original
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        if codenames is None:
            perms = list(Permission.objects.filter(content_type__app_label="inventory"))
            perms += list(Permission.objects.filter(content_type__app_label="core", codename__contains="alert"))
        else:
            perms = []
            for dotted in codenames:
                app_label, codename = dotted.split(".")
                perms.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        group.permissions.add(*perms)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    perms = Permission.objects.filter(content_type__app_label="inventory")
    for group in Group.objects.filter(name__in=ROLES):
        group.permissions.remove(*perms)


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0001_initial"),
        ("core", "0003_alerts_and_stock_settings"),
        ("orders", "0002_roles"),
    ]
    operations = [migrations.RunPython(grant, revoke)]
