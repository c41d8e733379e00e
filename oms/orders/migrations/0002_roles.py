"""Staff roles as groups with their permissions. Later apps add their permissions in their own migrations."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLES = {
    "Admin": None,  # every permission of the OMS apps and of user management
    "Manager": [
        "core.view_saleschannel",
        "core.view_inboundevent",
        "core.change_inboundevent",
        "core.view_auditentry",
        "orders.view_dashboard",
        "orders.view_order",
        "orders.hold_order",
        "orders.release_order",
        "orders.cancel_order",
        "orders.export_orders",
        "orders.view_orderline",
        "orders.view_orderevent",
        "orders.view_orderhold",
        "orders.view_customer",
        "orders.change_customer",
        "orders.view_customernote",
        "orders.add_customernote",
        "orders.view_address",
        "orders.view_syncrun",
        "orders.add_syncrun",
    ],
    "Warehouse": [
        "core.access_channel",
        "orders.view_dashboard",
        "orders.view_order",
        "orders.view_orderline",
        "orders.view_orderevent",
        "orders.hold_order",
        "orders.view_packing_queue",
        "orders.view_address",
    ],
    "Packer": ["core.access_channel", "orders.view_packing_queue"],
}
ADMIN_APPS = ("core", "orders", "auth")


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations; the groups need them now. Migration state apps
    # have no models module, which create_permissions takes as "nothing to do", hence the temporary flag.
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
            perms = Permission.objects.filter(content_type__app_label__in=ADMIN_APPS)
        else:
            perms = []
            for dotted in codenames:
                app_label, codename = dotted.split(".")
                perms.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        group.permissions.add(*perms)


def drop_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0001_initial"),
        ("core", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(create_roles, drop_roles)]
