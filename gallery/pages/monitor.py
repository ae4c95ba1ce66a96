"""The transient monitor: an HTML page and an Atom feed of the same list.

Thin: the list comes from ``products.transients`` through the API's ``MonitorQuery`` (one
reading of the parameters for the page, the feed and ``/api/v1/transients/``).
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from django.contrib.syndication.views import Feed
from django.http import HttpResponseBadRequest
from django.shortcuts import render
from django.urls import reverse
from django.utils.feedgenerator import Atom1Feed
from django.views.decorators.http import require_GET

from gallery.api.transients import MonitorQuery, rows_as_dicts
from products import timeline
from products.lightcurves import LightCurveError
from products.models import Instrument
from products.transients import DEFAULT_MIN_SIGMA


@require_GET
def monitor(request):
    try:
        query = MonitorQuery(request.GET)
    except LightCurveError as exc:
        return render(
            request,
            "pages/monitor.html",
            {"error": str(exc), "rows": [], "instruments": _instruments(), "query": None},
            status=400,
        )
    context = {
        "rows": rows_as_dicts(query.rows()),
        "query": query,
        "instruments": _instruments(),
        "default_sigma": DEFAULT_MIN_SIGMA,
        "feed_url": reverse("monitor:feed") + _query_string(request),
    }
    return render(request, "pages/monitor.html", context)


def _instruments() -> list[tuple[str, str]]:
    return list(Instrument.objects.order_by("name").values_list("code", "name"))


def _query_string(request) -> str:
    kept = {k: v for k, v in request.GET.items() if k in ("min_sigma", "instrument") and v}
    if not kept:
        return ""
    return "?" + urlencode(kept)


def _ijd_datetime(ijd: float) -> datetime:
    return timeline.to_datetime(timeline.ijd_to_time(ijd))


class TransientFeed(Feed):
    """Atom feed of the transient candidates, newest first (``?min_sigma=``, ``?instrument=``)."""

    feed_type = Atom1Feed
    title = "INTEGRAL Gallery: transient monitor"
    subtitle = (
        "Sources whose latest revolution-binned flux exceeds their long-term mean by at least "
        "the threshold (in σ)."
    )

    def __call__(self, request, *args, **kwargs):
        try:
            return super().__call__(request, *args, **kwargs)
        except LightCurveError as exc:
            return HttpResponseBadRequest(str(exc), content_type="text/plain; charset=utf-8")

    def get_object(self, request, *args, **kwargs) -> MonitorQuery:
        return MonitorQuery(request.GET)

    def link(self, obj: MonitorQuery) -> str:
        return reverse("monitor:monitor")

    def items(self, obj: MonitorQuery) -> list[dict]:
        return rows_as_dicts(obj.rows())

    def item_title(self, item: dict) -> str:
        band = ""
        if item["e_min_kev"] is not None and item["e_max_kev"] is not None:
            band = f" {item['e_min_kev']:g}–{item['e_max_kev']:g} keV"
        return (
            f"{item['source']['name']}: {item['excess_sigma']:.1f}σ above its mean in "
            f"revolution {item['revolution']} ({item['instrument']}{band})"
        )

    def item_description(self, item: dict) -> str:
        unit = f" {item['flux_unit']}" if item["flux_unit"] else ""
        spread = item["std_flux"] if item["std_flux"] is not None else item["mean_error"]
        return (
            f"Revolution {item['revolution']} (mid {item['t_mid_utc']} UTC): flux "
            f"{item['flux']:.4g} ± {item['error']:.2g}{unit} from {item['n_points']} points; "
            f"long-term mean {item['mean_flux']:.4g}{unit} (scatter {spread:.2g}) over "
            f"{item['n_revolutions']} earlier revolutions."
        )

    def item_link(self, item: dict) -> str:
        return item["source"]["url"]

    def item_guid(self, item: dict) -> str:
        band = f"{item['e_min_kev']}-{item['e_max_kev']}"
        return (
            f"integral-gallery:transient:{item['source']['slug']}:{item['instrument']}:{band}:"
            f"{item['revolution']}"
        )

    item_guid_is_permalink = False

    def item_pubdate(self, item: dict) -> datetime:
        return _ijd_datetime(item["t_stop_ijd"])

    def item_updateddate(self, item: dict) -> datetime:
        return _ijd_datetime(item["t_stop_ijd"])

    def item_categories(self, item: dict) -> list[str]:
        return [c for c in (item["instrument"], item["source"]["class"]) if c]
