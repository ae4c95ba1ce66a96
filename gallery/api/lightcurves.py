"""``/api/v1/sources/<id or slug>/lightcurve``: a source's long-term light curve.

Thin: ``products.lightcurves`` picks the points (visibility through
``FluxPoint.objects.visible_to``), bins them in SQL and writes the download formats. The
view reads the parameters, answers 400 with ``{"detail": …}`` for bad ones and 404 for an
unknown source.
"""

from __future__ import annotations

from django.http import HttpResponse, JsonResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from products import lightcurves
from sources.models import Source

CONTENT_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "fits": "application/fits",
    "votable": "application/x-votable+xml",
}
EXTENSIONS = {"csv": "csv", "fits": "fits", "votable": "vot"}


def find_source(key: str) -> Source | None:
    """A source by id or slug; a merged source stands for the one it was merged into."""
    related = Source.objects.select_related("merged_into")
    source = related.filter(pk=int(key)).first() if key.isdigit() and len(key) < 19 else None
    if source is None:
        source = related.filter(slug=key).first()
    seen: set[int] = set()
    while source is not None and source.merged_into_id and source.pk not in seen:
        seen.add(source.pk)
        source = source.merged_into
    return source


def bad_request(message: str) -> JsonResponse:
    return JsonResponse({"detail": message}, status=400)


def _filename(curve: lightcurves.LightCurve, fmt: str) -> str:
    parts = [curve.source_slug]
    if curve.band is not None:
        parts.append(curve.band.instrument)
        if curve.band.e_min_kev is not None and curve.band.e_max_kev is not None:
            parts.append(f"{curve.band.e_min_kev:g}-{curve.band.e_max_kev:g}keV")
    parts.append(curve.binning.label)
    return "_".join(parts) + "." + EXTENSIONS[fmt]


class LightCurveView(APIView):
    """The light curve of a source, binned on request, as JSON (for plots) or a download."""

    permission_classes = [AllowAny]

    def perform_content_negotiation(self, request, force=False):
        # ``format`` chooses the download (csv, fits, votable), not a REST framework renderer.
        return JSONRenderer(), "application/json"

    @extend_schema(
        tags=["sources"],
        summary="Long-term light curve of a source",
        description=(
            "All the flux points of a source you may see, for one instrument and energy band, "
            "rebinned: `scw` (no rebinning), `revolution`, `1d`, `7d`, `30d`, `<n>d` or a "
            "number of seconds. A bin's flux is the exposure-weighted mean of its points and "
            "its error sqrt(Σw²σ²)/Σw; below 3σ it is a 2σ upper limit max(mean, 0) + 2·error "
            "(`upper_limit` true; the measured mean is significance × error). Times are IJD "
            "(MJD − 51544, TT); `t_mid_utc` is UTC. Without `instrument` or band, the band "
            "with the most points is chosen; `available` lists them all."
        ),
        parameters=[
            OpenApiParameter("instrument", str, description="isgri, jemx1, jemx2, spi_acs"),
            OpenApiParameter("e_min", float, description="Lower bound of the band (keV)"),
            OpenApiParameter("e_max", float, description="Upper bound of the band (keV)"),
            OpenApiParameter(
                "bin", str, description="scw, revolution (default), 1d, 7d, 30d or seconds"
            ),
            OpenApiParameter("format", str, enum=list(CONTENT_TYPES), description="json"),
        ],
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="The light curve"),
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="`detail`: what is wrong"),
            404: OpenApiResponse(OpenApiTypes.OBJECT, description="No such source"),
        },
    )
    def get(self, request, source: str):
        found = find_source(source)
        if found is None:
            return JsonResponse({"detail": f"No source {source[:120]!r}."}, status=404)
        params = request.query_params
        fmt = (params.get("format") or "json").strip().lower()
        if fmt not in CONTENT_TYPES:
            return bad_request(f"format must be one of {', '.join(CONTENT_TYPES)}, not {fmt!r}")
        try:
            curve = lightcurves.light_curve(
                found,
                request.user,
                binning=params.get("bin"),
                instrument=lightcurves.instrument_code(params.get("instrument")),
                e_min_kev=lightcurves.parse_energy(params.get("e_min"), "e_min"),
                e_max_kev=lightcurves.parse_energy(params.get("e_max"), "e_max"),
            )
        except lightcurves.LightCurveError as exc:
            return bad_request(str(exc))
        if fmt == "json":
            return HttpResponse(curve.json_text(), content_type=CONTENT_TYPES[fmt])
        curve.flux_unit = lightcurves.flux_unit_of(found, curve.band)
        writer = {
            "csv": lightcurves.to_csv,
            "fits": lightcurves.to_fits,
            "votable": lightcurves.to_votable,
        }[fmt]
        response = HttpResponse(writer(curve), content_type=CONTENT_TYPES[fmt])
        response["Content-Disposition"] = f'attachment; filename="{_filename(curve, fmt)}"'
        return response
