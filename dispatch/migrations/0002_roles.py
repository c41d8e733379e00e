"""Dispatch permissions for the staff roles of orders.0002_roles."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

PACKER = [
    "dispatch.pack_orders",
    "dispatch.view_shipment",
    "dispatch.reprint_documents",
    "dispatch.view_printjob",
]
WAREHOUSE = [
    *PACKER,
    "dispatch.manage_batches",
    "dispatch.view_batch",
    "dispatch.view_manifest",
    "dispatch.add_manifest",
    "dispatch.view_packsession",
]
ROLES = {
    "Admin": None,  # every permission of the dispatch app
    "Manager": [*WAREHOUSE, "dispatch.override_pack_check", "dispatch.void_shipment", "dispatch.view_carrieraccount"],
    "Warehouse": WAREHOUSE,
    "Packer": PACKER,
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
            perms = list(Permission.objects.filter(content_type__app_label="dispatch"))
        else:
            perms = []
            for dotted in codenames:
                app_label, codename = dotted.split(".")
                perms.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        group.permissions.add(*perms)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    perms = Permission.objects.filter(content_type__app_label="dispatch")
    for group in Group.objects.filter(name__in=ROLES):
        group.permissions.remove(*perms)


class Migration(migrations.Migration):
    dependencies = [
        ("dispatch", "0001_initial"),
        ("orders", "0004_order_service_level_order_order_pack_queue"),
        ("inventory", "0002_roles"),
    ]
    operations = [migrations.RunPython(grant, revoke)]
