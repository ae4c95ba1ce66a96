"""``/api/v1/transients/``: sources whose latest revolution exceeds their long-term mean.

The list comes from the maintained summaries (``products.transients``), which are built from
the flux points everyone may see, so every client gets the same answer.
"""

from __future__ import annotations

import math

from django.http import JsonResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from products import transients
from products.lightcurves import LightCurveError, ijd_to_utc_strings, instrument_code
from products.models import LightCurveSummary

MAX_LIMIT = 500
DEFAULT_LIMIT = 100


class MonitorQuery:
    """The monitor's parameters, read and checked once for the API, the page and the feed."""

    def __init__(self, params) -> None:
        self.min_sigma = _number(params.get("min_sigma"), "min_sigma", transients.DEFAULT_MIN_SIGMA)
        if not 0 < self.min_sigma <= 1000:
            raise LightCurveError("min_sigma must lie between 0 and 1000")
        since = params.get("since_revolution")
        self.since_revolution = None
        if since not in (None, ""):
            if not str(since).isdigit() or len(str(since)) > 5:
                raise LightCurveError("since_revolution must be a revolution number")
            self.since_revolution = int(since)
        self.instrument = instrument_code(params.get("instrument"))
        limit = _number(params.get("limit"), "limit", DEFAULT_LIMIT)
        if limit != int(limit) or not 1 <= limit <= MAX_LIMIT:
            raise LightCurveError(f"limit must be a whole number from 1 to {MAX_LIMIT}")
        self.limit = int(limit)

    def rows(self) -> list[LightCurveSummary]:
        return list(
            transients.transients(
                self.min_sigma,
                since_revolution=self.since_revolution,
                instrument=self.instrument,
            )[: self.limit]
        )


def _number(value, name: str, default: float) -> float:
    if value in (None, ""):
        return float(default)
    try:
        number = float(value)
    except ValueError:
        raise LightCurveError(f"{name} must be a number, not {value!r}") from None
    if not math.isfinite(number):
        raise LightCurveError(f"{name} must be a finite number")
    return number


def lightcurve_url(row: LightCurveSummary) -> str:
    url = reverse("lightcurves:source-lightcurve", args=[row.source.slug])
    query = f"?instrument={row.instrument.code}&bin=revolution"
    if row.e_min_kev is not None and row.e_max_kev is not None:
        query += f"&e_min={row.e_min_kev:g}&e_max={row.e_max_kev:g}"
    return url + query


def as_dict(row: LightCurveSummary, t_mid_utc: str) -> dict:
    source = row.source
    return {
        "source": {
            "slug": source.slug,
            "name": source.name,
            "class": source.object_class.code if source.object_class else None,
            "ra_deg": source.ra_deg,
            "dec_deg": source.dec_deg,
            "is_provisional": source.is_provisional,
            "url": source.get_absolute_url(),
        },
        "instrument": row.instrument.code,
        "e_min_kev": row.e_min_kev,
        "e_max_kev": row.e_max_kev,
        "revolution": row.latest_revolution,
        "t_start_ijd": row.latest_t_start_ijd,
        "t_stop_ijd": row.latest_t_stop_ijd,
        "t_mid_utc": t_mid_utc,
        "flux": row.latest_flux,
        "error": row.latest_error,
        "n_points": row.latest_n_points,
        "mean_flux": row.mean_flux,
        "mean_error": row.mean_error,
        "std_flux": row.std_flux,
        "excess_sigma": row.excess_sigma,
        "n_revolutions": row.n_revolutions,
        "flux_unit": row.flux_unit,
        "lightcurve": lightcurve_url(row),
        "updated": row.updated.isoformat(),
    }


def rows_as_dicts(rows: list[LightCurveSummary]) -> list[dict]:
    mids = ijd_to_utc_strings([0.5 * (r.latest_t_start_ijd + r.latest_t_stop_ijd) for r in rows])
    return [as_dict(row, mid) for row, mid in zip(rows, mids, strict=True)]


class TransientListView(APIView):
    """Transient candidates, newest revolution first."""

    permission_classes = [AllowAny]

    @extend_schema(
        tags=["sources"],
        summary="Transient monitor",
        description=(
            "Sources whose latest revolution-binned flux exceeds their long-term mean by at "
            "least `min_sigma` σ: (F_latest − mean) / sqrt(error_latest² + scatter²), where "
            "the mean is the exposure-weighted mean of the earlier revolutions and the scatter "
            "the standard deviation of their revolution fluxes. Newest revolution first. Built "
            "from public data only."
        ),
        parameters=[
            OpenApiParameter("min_sigma", float, description="Threshold in σ (default 5)"),
            OpenApiParameter("since_revolution", int, description="Only revolutions from this"),
            OpenApiParameter("instrument", str, description="isgri, jemx1, jemx2, spi_acs"),
            OpenApiParameter("limit", int, description=f"At most this many (≤ {MAX_LIMIT})"),
        ],
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="The candidates"),
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="`detail`: what is wrong"),
        },
    )
    def get(self, request):
        try:
            query = MonitorQuery(request.query_params)
        except LightCurveError as exc:
            return JsonResponse({"detail": str(exc)}, status=400)
        rows = query.rows()
        return JsonResponse(
            {
                "min_sigma": query.min_sigma,
                "count": len(rows),
                "results": rows_as_dicts(rows),
            }
        )
