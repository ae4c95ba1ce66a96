"""Examples shown in the OpenAPI schema and Swagger UI (one per endpoint at least)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample

BASE = "https://gallery.example.org"
PRODUCT_UUID = "3f2b6c1e-8d4a-4f5e-9b7c-2a1d0e9f8c7b"

SOURCE = {
    "id": 42,
    "slug": "v404-cyg",
    "name": "V404 Cyg",
    "url": f"{BASE}/api/v1/sources/42/",
    "page_url": f"{BASE}/sources/v404-cyg/",
    "object_class": "LMXB",
    "class_label": "Low-mass X-ray binary",
    "aliases": ["GS 2023+338", "1RXS J202405.3+335157"],
    "ra_deg": 306.01596,
    "dec_deg": 33.86722,
    "error_radius_arcmin": 0.1,
    "is_provisional": False,
    "portal_url": "https://cdsportal.u-strasbg.fr/?target=V404%20Cyg",
    "distance_deg": None,
}

SOURCE_LIST = OpenApiExample(
    "Sources named like 'v404'",
    value=SOURCE,
    response_only=True,
)
SOURCE_DETAIL = OpenApiExample(
    "A source with its product counts",
    value={
        **SOURCE,
        "description": "",
        "catalogue_url": "",
        "merged_names": [],
        "product_counts": [
            {"instrument": "isgri", "kind": "image", "count": 12},
            {"instrument": "isgri", "kind": "spectrum", "count": 8},
            {"instrument": "jemx1", "kind": "lightcurve", "count": 3},
        ],
        "products_url": f"{BASE}/api/v1/products/?source_id=42",
        "created": "2025-01-10T12:00:00Z",
        "updated": "2025-01-10T12:00:00Z",
    },
    response_only=True,
)
MERGE_REQUEST = OpenApiExample(
    "Merge a provisional detection into its counterpart",
    value={"into": "V404 Cyg"},
    request_only=True,
)

REVOLUTION = {
    "number": 1555,
    "url": f"{BASE}/api/v1/revolutions/1555/",
    "page_url": f"{BASE}/revolutions/1555/",
    "start": "2015-06-17T08:21:18Z",
    "end": "2015-06-20T00:10:26Z",
    "start_ijd": 5646.34880235,
    "data_level": "CONS",
    "is_predicted": False,
}
REVOLUTION_LIST = OpenApiExample(
    "Revolutions, newest first",
    value=REVOLUTION,
    response_only=True,
)
OBSERVATION = {
    "id": 7,
    "url": f"{BASE}/api/v1/observations/7/",
    "title": "V404 Cyg ToO",
    "obsid": "12200350001",
    "expid": "15550001",
    "pi_name": "E. Kuulkers",
    "revolution": 1555,
    "rev_first": 1555,
    "rev_last": 1555,
    "time_start": "2015-06-17T10:00:00Z",
    "time_end": "2015-06-19T20:00:00Z",
    "ra_deg": 306.016,
    "dec_deg": 33.867,
    "scw_count": 45,
    "products_url": f"{BASE}/api/v1/products/?observation=7",
}
REVOLUTION_DETAIL = OpenApiExample(
    "A revolution with its observations and product counts",
    value={
        **REVOLUTION,
        "observations": [
            {
                k: OBSERVATION[k]
                for k in ("id", "url", "title", "obsid", "pi_name", "time_start", "time_end")
            }
        ],
        "product_counts": [{"instrument": "isgri", "kind": "image", "count": 2}],
        "products_url": f"{BASE}/api/v1/products/?revolution=1555",
    },
    response_only=True,
)
OBSERVATION_LIST = OpenApiExample(
    "Observations, newest first",
    value=OBSERVATION,
    response_only=True,
)
OBSERVATION_DETAIL = OpenApiExample(
    "An observation with its science windows and product counts",
    value={
        **OBSERVATION,
        "scw_ids": ["155500010010.001", "155500020010.001"],
        "product_counts": [{"instrument": "jemx1", "kind": "image", "count": 1}],
    },
    response_only=True,
)

PRODUCT = {
    "uuid": PRODUCT_UUID,
    "url": f"{BASE}/api/v1/products/{PRODUCT_UUID}/",
    "page_url": f"{BASE}/products/{PRODUCT_UUID}/",
    "title": "V404 Cyg IBIS/ISGRI 20–40 keV spectrum, Rev. 1555",
    "kind": "spectrum",
    "category": "spectrum",
    "instrument": "isgri",
    "instrument_family": "isgri",
    "e_min_kev": 20.0,
    "e_max_kev": 40.0,
    "time_start": "2015-06-17T10:00:00Z",
    "time_end": "2015-06-19T20:00:00Z",
    "rev_first": 1555,
    "rev_last": 1555,
    "rev_span": 0,
    "ra_deg": 306.01596,
    "dec_deg": 33.86722,
    "exposure_s": 152000.0,
    "osa_version": "11.2",
    "data_level": "CONS",
    "observation": 7,
    "sources": [
        {"id": 42, "name": "V404 Cyg", "slug": "v404-cyg", "role": "target", "significance": None}
    ],
    "tags": ["outburst"],
    "version": 2,
    "is_latest": True,
    "status": "published",
    "access": "public",
    "embargo_until": None,
    "is_highlight": True,
    "created": "2015-07-20T09:00:00Z",
}
PRODUCT_LIST = OpenApiExample(
    "ISGRI spectra of V404 Cyg in revolutions 1550-1560",
    value=PRODUCT,
    response_only=True,
)
PRODUCT_DETAIL = OpenApiExample(
    "A spectrum with its files, fit and versions",
    value={
        **PRODUCT,
        "external_id": "",
        "produced_by": "pipeline osa11.2",
        "provenance": {"osa": "11.2", "scw_count": 45},
        "metadata": {"notes": []},
        "files": [
            {
                "id": 101,
                "role": "data",
                "name": "spectrum.fits.gz",
                "size_bytes": 28800,
                "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                "content_type": "application/gzip",
                "download_url": f"{BASE}/products/{PRODUCT_UUID}/files/101/spectrum.fits.gz",
            }
        ],
        "fits": [
            {
                "model": "powerlaw",
                "parameters": [{"name": "index", "value": 2.1, "error": 0.05, "unit": ""}],
                "statistic": "chi2",
                "statistic_value": 52.3,
                "dof": 48,
                "reduced_statistic": 1.09,
                "e_min_kev": 30.0,
                "e_max_kev": 300.0,
                "flux_erg_cm2_s": 2.3e-9,
                "flux_error": 1e-11,
                "is_preferred": True,
            }
        ],
        "versions": [
            {
                "uuid": PRODUCT_UUID,
                "url": f"{BASE}/api/v1/products/{PRODUCT_UUID}/",
                "version": 2,
                "is_latest": True,
                "osa_version": "11.2",
                "data_level": "CONS",
                "created": "2015-07-20T09:00:00Z",
            }
        ],
        "granted_groups": None,
        "updated": "2015-07-20T09:00:00Z",
    },
    response_only=True,
)
UPLOAD_REQUEST = OpenApiExample(
    "A spectrum with its responses",
    value={
        "files": ["spectrum.fits.gz", "rmf.fits.gz", "arf.fits.gz"],
        "source": "V404 Cyg",
        "tags": ["outburst", "osa11"],
        "access": "proprietary",
        "embargo_until": "2026-06-01T00:00:00Z",
        "granted_groups": ["v404-team"],
        "provenance": '{"pipeline": "osa11.2", "scw_count": 45}',
    },
    request_only=True,
)
JOB = {
    "uuid": "0d9c8b7a-6f5e-4d3c-2b1a-0f9e8d7c6b5a",
    "url": f"{BASE}/api/v1/jobs/0d9c8b7a-6f5e-4d3c-2b1a-0f9e8d7c6b5a/",
    "state": "pending",
    "message": "",
    "files": ["spectrum.fits.gz", "rmf.fits.gz", "arf.fits.gz"],
    "products": [],
    "created": "2026-01-05T10:00:00Z",
    "updated": "2026-01-05T10:00:00Z",
}
UPLOAD_ACCEPTED = OpenApiExample(
    "Accepted: poll the job", value=JOB, response_only=True, status_codes=["202"]
)
JOB_DONE = OpenApiExample(
    "A finished job",
    value={
        **JOB,
        "state": "done",
        "message": f"{PRODUCT_UUID} created",
        "products": [{"uuid": PRODUCT_UUID, "url": PRODUCT["url"], "title": PRODUCT["title"]}],
    },
    response_only=True,
)
PATCH_REQUEST = OpenApiExample(
    "Feature a product and retag it",
    value={"is_highlight": True, "tags": ["outburst", "featured"]},
    request_only=True,
)
TIME_CONVERSION = OpenApiExample(
    "An ISOT time in every format",
    value={
        "value": "2015-06-17T08:21:18",
        "from_format": "isot",
        "results": {
            "isot": "2015-06-17T08:21:18",
            "mjd": 57190.34812500,
            "ijd": 5646.34892574,
            "revnum": 1555,
        },
    },
    response_only=True,
)
ERROR_FIELD = OpenApiExample(
    "A faulty parameter",
    value={"radius": ["the radius must be greater than 0 and at most 180 degrees"]},
    response_only=True,
    status_codes=["400"],
)
NOT_FOUND = OpenApiExample(
    "Not found",
    value={"detail": "No Product matches the given query."},
    response_only=True,
    status_codes=["404"],
)
