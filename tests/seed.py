"""The reference rows that migrations seed (instruments, product kinds, source classes, role
groups). A ``transactional_db`` test empties every table when it ends, so the next one puts
them back with ``ensure_reference_rows``."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

from gallery.roles import ROLES, permissions_for
from products.catalogue import INSTRUMENTS, PRODUCT_KINDS
from products.models import Instrument, ProductKind
from sources.classes import SOURCE_CLASSES
from sources.models import SourceClass


def ensure_reference_rows() -> None:
    for code, name, family, e_min, e_max, radius, band in INSTRUMENTS:
        Instrument.objects.get_or_create(
            code=code,
            defaults=dict(
                name=name,
                family=family,
                e_min_kev=e_min,
                e_max_kev=e_max,
                match_radius_arcmin=radius,
                default_fit_band_kev=band,
            ),
        )
    for code, name, category in PRODUCT_KINDS:
        ProductKind.objects.get_or_create(code=code, defaults=dict(name=name, category=category))
    by_code = {c.code: c for c in SourceClass.objects.all()}
    for code, label, parent in SOURCE_CLASSES:
        if code not in by_code:
            by_code[code] = SourceClass.objects.create(
                code=code, label=label, parent=by_code.get(parent)
            )
    for role in ROLES:
        group, created = Group.objects.get_or_create(name=role)
        if created:
            perms = []
            for dotted in permissions_for(role):
                app_label, codename = dotted.split(".")
                perms += Permission.objects.filter(
                    content_type__app_label=app_label, codename=codename
                )
            group.permissions.set(perms)
