"""factory_boy factories for the sky (sources) and the archive (products).

Lookup tables seeded by migrations (instruments, product kinds, source classes) are fetched by
code with get_or_create, so the factories also work after a ``transactional_db`` flush, when
the seeded rows are gone.

    SourceFactory(name="Crab", class_code="Pulsar", aliases=["M 1"])
    ProductFactory(instrument__code="jemx1", kind__code="spectrum", sources=[crab])
    FluxPointFactory(product=lc, source=crab, t_start_ijd=5000.0)
"""

from __future__ import annotations

import hashlib

import factory
from django.core.files.base import ContentFile
from factory.django import DjangoModelFactory

from products import timeline
from products.catalogue import INSTRUMENTS, PRODUCT_KINDS
from products.models import (
    FluxPoint,
    Instrument,
    Observation,
    Product,
    ProductFile,
    ProductKind,
    ProductSource,
    Revolution,
)
from sources.classes import SOURCE_CLASSES
from sources.models import Source, SourceClass, SourceName

_INSTRUMENTS = {row[0]: row for row in INSTRUMENTS}
_KINDS = {row[0]: row for row in PRODUCT_KINDS}
_CLASSES = {code: (label, parent) for code, label, parent in SOURCE_CLASSES}


def source_class(code: str | None) -> SourceClass | None:
    """The SourceClass of ``code`` (a built-in one is created, with its parents, if missing)."""
    if not code:
        return None
    found = SourceClass.objects.filter(code=code).first()
    if found is not None:
        return found
    label, parent = _CLASSES.get(code, (code, None))
    return SourceClass.objects.create(code=code, label=label, parent=source_class(parent))


# --- sources -------------------------------------------------------------------------------


class SourceFactory(DjangoModelFactory):
    """A source spread over the sky by its sequence number; ``class_code`` sets its class."""

    class Meta:
        model = Source
        skip_postgeneration_save = True

    class Params:
        class_code = None

    name = factory.Sequence(lambda n: f"Test Source {n}")
    ra_deg = factory.Sequence(lambda n: (n * 47.3) % 360.0)
    dec_deg = factory.Sequence(lambda n: (n * 17.9) % 170.0 - 85.0)
    error_radius_arcmin = 0.1
    object_class = factory.LazyAttribute(lambda o: source_class(o.class_code))

    @factory.post_generation
    def aliases(self, create, extracted, **kwargs):
        """``aliases=["M 1", "Tau A"]`` adds alternative names."""
        if create and extracted:
            for alias in extracted:
                self.add_alias(alias)


class SourceNameFactory(DjangoModelFactory):
    """An alternative name of a source."""

    class Meta:
        model = SourceName

    source = factory.SubFactory(SourceFactory)
    name = factory.Sequence(lambda n: f"Alias {n}")
    is_canonical = False


# --- archive lookups -----------------------------------------------------------------------


def _seeded(table: dict, code: str, index: int, default):
    """Field ``index`` of the seeded row of ``code``, or ``default`` for a code not seeded."""
    row = table.get(code)
    return row[index] if row else default


class InstrumentFactory(DjangoModelFactory):
    """An instrument by code (``isgri`` by default), with the seeded attributes."""

    class Meta:
        model = Instrument
        django_get_or_create = ("code",)

    code = "isgri"
    name = factory.LazyAttribute(lambda o: _seeded(_INSTRUMENTS, o.code, 1, o.code))
    family = factory.LazyAttribute(lambda o: _seeded(_INSTRUMENTS, o.code, 2, o.code))
    e_min_kev = factory.LazyAttribute(lambda o: _seeded(_INSTRUMENTS, o.code, 3, None))
    e_max_kev = factory.LazyAttribute(lambda o: _seeded(_INSTRUMENTS, o.code, 4, None))
    match_radius_arcmin = factory.LazyAttribute(lambda o: _seeded(_INSTRUMENTS, o.code, 5, 3.0))
    default_fit_band_kev = factory.LazyAttribute(
        lambda o: list(_seeded(_INSTRUMENTS, o.code, 6, []))
    )


class ProductKindFactory(DjangoModelFactory):
    """A product kind by code (``image`` by default)."""

    class Meta:
        model = ProductKind
        django_get_or_create = ("code",)

    code = "image"
    name = factory.LazyAttribute(lambda o: _seeded(_KINDS, o.code, 1, o.code))
    category = factory.LazyAttribute(lambda o: _seeded(_KINDS, o.code, 2, "other"))


class RevolutionFactory(DjangoModelFactory):
    """A revolution with its real start and end from the perigee table."""

    class Meta:
        model = Revolution
        django_get_or_create = ("number",)

    number = factory.Sequence(lambda n: 1000 + n)
    start = factory.LazyAttribute(
        lambda o: timeline.to_datetime(timeline.revolution_start(o.number))
    )
    end = factory.LazyAttribute(lambda o: timeline.to_datetime(timeline.revolution_end(o.number)))
    data_level = "CONS"


class ObservationFactory(DjangoModelFactory):
    """An observation filling its revolution."""

    class Meta:
        model = Observation

    title = factory.Sequence(lambda n: f"observation {n}")
    obsid = factory.Sequence(lambda n: f"{19600010000 + n}")
    revolution = factory.SubFactory(RevolutionFactory)
    rev_first = factory.SelfAttribute("revolution.number")
    rev_last = factory.SelfAttribute("revolution.number")
    time_start = factory.SelfAttribute("revolution.start")
    time_end = factory.SelfAttribute("revolution.end")
    ra_deg = 83.633
    dec_deg = 22.0145


# --- products ------------------------------------------------------------------------------


class ProductFactory(DjangoModelFactory):
    """A published, public product of one revolution; ``sources=[…]`` links its targets."""

    class Meta:
        model = Product
        skip_postgeneration_save = True

    title = factory.Sequence(lambda n: f"Test product {n}")
    kind = factory.SubFactory(ProductKindFactory)
    instrument = factory.SubFactory(InstrumentFactory)
    e_min_kev = 20.0
    e_max_kev = 40.0
    rev_first = factory.Sequence(lambda n: 1000 + n)
    rev_last = factory.SelfAttribute("rev_first")
    time_start = factory.LazyAttribute(
        lambda o: timeline.to_datetime(timeline.revolution_start(o.rev_first))
    )
    time_end = factory.LazyAttribute(
        lambda o: timeline.to_datetime(timeline.revolution_end(o.rev_last))
    )
    series_key = factory.Sequence(lambda n: f"series-{n}")
    content_key = factory.Sequence(lambda n: hashlib.sha256(f"product {n}".encode()).hexdigest())
    status = Product.Status.PUBLISHED
    access = Product.Access.PUBLIC

    @factory.post_generation
    def sources(self, create, extracted, **kwargs):
        """``sources=[src, …]`` links them as targets (``sources__role="detected"`` to change)."""
        if create and extracted:
            role = kwargs.get("role", ProductSource.Role.TARGET)
            for source in extracted:
                ProductSource.objects.get_or_create(
                    product=self, source=source, defaults={"role": role}
                )


class ProductFileFactory(DjangoModelFactory):
    """A stored file of a product; ``content=b"…"`` sets its bytes (a FITS header by default)."""

    class Meta:
        model = ProductFile

    class Params:
        content = factory.Sequence(
            lambda n: (
                (f"SIMPLE  =                    T / test file {n}".ljust(80) + "END".ljust(80))
                .ljust(2880)
                .encode("ascii")
            )
        )

    product = factory.SubFactory(ProductFactory)
    role = ProductFile.Role.DATA
    sha256 = factory.LazyAttribute(lambda o: hashlib.sha256(o.content).hexdigest())
    size_bytes = factory.LazyAttribute(lambda o: len(o.content))
    original_name = factory.Sequence(lambda n: f"file_{n}.fits")
    content_type = "application/fits"
    extension = ".fits"
    file = factory.LazyAttribute(lambda o: ContentFile(o.content, name=o.original_name))


class FluxPointFactory(DjangoModelFactory):
    """A flux measurement; instrument and band follow its product."""

    class Meta:
        model = FluxPoint

    product = factory.SubFactory(ProductFactory, kind__code="lightcurve")
    source = factory.SubFactory(SourceFactory)
    instrument = factory.SelfAttribute("product.instrument")
    e_min_kev = factory.SelfAttribute("product.e_min_kev")
    e_max_kev = factory.SelfAttribute("product.e_max_kev")
    t_start_ijd = factory.Sequence(lambda n: 3000.0 + n * 0.05)
    t_stop_ijd = factory.LazyAttribute(lambda o: o.t_start_ijd + 0.04)
    flux = 10.0
    flux_error = 0.5
    significance = 20.0
    revolution = factory.SelfAttribute("product.rev_first")
