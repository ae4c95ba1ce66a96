from django.db import migrations

from gallery.roles import ROLES, permissions_for


def create_roles(apps, schema_editor):
    # Permissions are created after migrations by a post_migrate signal; make sure they exist.
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        perms = []
        for dotted in permissions_for(role):
            app_label, codename = dotted.split(".")
            perms += list(Permission.objects.filter(content_type__app_label=app_label,
                                                    codename=codename))
        group.permissions.set(perms)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("gallery", "0001_api_tokens"),
        ("products", "0002_seed_instruments_kinds"),
        ("sources", "0002_source_classes"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(create_roles, remove_roles)]
