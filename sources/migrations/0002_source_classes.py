from django.db import migrations

from sources.classes import SOURCE_CLASSES


def add_classes(apps, schema_editor):
    SourceClass = apps.get_model("sources", "SourceClass")
    by_code = {}
    for code, label, parent in SOURCE_CLASSES:
        obj, _ = SourceClass.objects.get_or_create(code=code, defaults={"label": label})
        obj.parent = by_code.get(parent)
        obj.save()
        by_code[code] = obj


def remove_classes(apps, schema_editor):
    SourceClass = apps.get_model("sources", "SourceClass")
    SourceClass.objects.filter(code__in=[c for c, _, _ in SOURCE_CLASSES]).delete()


class Migration(migrations.Migration):
    dependencies = [("sources", "0001_initial")]
    operations = [migrations.RunPython(add_classes, remove_classes)]
