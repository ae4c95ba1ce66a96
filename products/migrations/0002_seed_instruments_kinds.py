from django.db import migrations

from products.catalogue import INSTRUMENTS, PRODUCT_KINDS


def seed(apps, schema_editor):
    Instrument = apps.get_model("products", "Instrument")
    ProductKind = apps.get_model("products", "ProductKind")
    for code, name, family, e_min, e_max, radius, band in INSTRUMENTS:
        Instrument.objects.update_or_create(
            code=code,
            defaults=dict(name=name, family=family, e_min_kev=e_min, e_max_kev=e_max,
                          match_radius_arcmin=radius, default_fit_band_kev=band),
        )
    for code, name, category in PRODUCT_KINDS:
        ProductKind.objects.update_or_create(code=code, defaults=dict(name=name, category=category))


def unseed(apps, schema_editor):
    apps.get_model("products", "ProductKind").objects.filter(
        code__in=[k[0] for k in PRODUCT_KINDS], products__isnull=True
    ).delete()
    apps.get_model("products", "Instrument").objects.filter(
        code__in=[i[0] for i in INSTRUMENTS], products__isnull=True
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("products", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
