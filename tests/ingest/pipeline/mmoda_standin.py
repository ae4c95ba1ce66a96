"""A stand-in for the MMODA dispatcher on 127.0.0.1, speaking the protocol of ``oda_api``.

``DispatcherAPI.get_product`` first asks ``/api/par-names`` for the parameters a product
takes, then calls ``/run_analysis`` (GET, or POST when the parameters are long) with
``query_status=new``; the dispatcher answers with a job id and ``query_status`` "submitted";
the client polls with the job id until "done" (or "failed"), and decodes the products of the
answer: ``numpy_data_product_list`` (FITS files as pickled HDU data, base64, with headers and
``meta_data``) and, for images, ``catalog`` (the API catalogue). The stand-in serves real
fixture files: the Crab-field ISGRI mosaic and catalogue, the OSA 11 spectrum of 1A 0535+262,
the OAO 1657-415 light curve, the JEM-X1 Crab products, and an SPI-ACS light curve written
for the test. It records every request, so tests can check what the backend asked for.
"""

from __future__ import annotations

import base64
import json
import math
import pickle
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
from astropy.io import fits

PARAMETERS = {
    "isgri_image": ["E1_keV", "E2_keV", "osa_version", "scw_list", "detection_threshold"],
    "jemx_image": [
        "E1_keV", "E2_keV", "osa_version", "scw_list", "detection_threshold", "jemx_num",
    ],
    "isgri_spectrum": ["E1_keV", "E2_keV", "osa_version", "scw_list", "selected_catalog"],
    "jemx_spectrum": [
        "E1_keV", "E2_keV", "osa_version", "scw_list", "selected_catalog", "jemx_num",
    ],
    "isgri_lc": [
        "E1_keV", "E2_keV", "osa_version", "scw_list", "selected_catalog", "time_bin",
        "time_bin_format",
    ],
    "jemx_lc": [
        "E1_keV", "E2_keV", "osa_version", "scw_list", "selected_catalog", "time_bin",
        "time_bin_format", "jemx_num",
    ],
    "spi_acs_lc": ["T1", "T2", "time_bin", "RA", "DEC"],
}  # fmt: skip


def _clean(value):
    """JSON-safe header values: the client evaluates the answer as a Python literal, so no
    NaN or infinity may appear."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)


def _without_null(unit, encoded: dict) -> dict:
    """The client turns every "null" of the answer into "None" before decoding it, base64
    text included (a risk the real service runs too): pickle the data another way (protocol,
    memory order) until its base64 holds no "null"."""
    if "null" not in (encoded.get("binarys") or ""):
        return encoded
    data = unit.data
    variants = [(data, p) for p in (2, 3, 4, 5)]
    if isinstance(data, np.ndarray) and type(data) is np.ndarray:
        variants += [(np.asfortranarray(data), p) for p in (2, 3, 4, 5)]
    for value, protocol in variants:
        text = base64.b64encode(pickle.dumps(value, protocol=protocol)).decode()
        if "null" not in text:
            return {**encoded, "binarys": text}
    raise RuntimeError("cannot encode these data without the text 'null'")


def encode_fits(path: Path, meta: dict, band: tuple[float, float] | None = None) -> dict:
    """A FITS file as ``oda_api`` sends it: a NumpyDataProduct, encoded. ``band`` relabels
    an image's energy band (the stand-in has one mosaic per instrument for every band)."""
    from json_tricks import dumps
    from oda_api.data_products import NumpyDataUnit

    units = []
    with fits.open(path) as hdul:
        for hdu in hdul:
            unit = NumpyDataUnit.from_fits_hdu(hdu)
            unit.header = {k: _clean(v) for k, v in unit.header.items() if k}
            if band is not None and "E_MIN" in unit.header:
                unit.header["E_MIN"], unit.header["E_MAX"] = band
            units.append(_without_null(unit, unit.encode(use_pickle=True)))
    return {"data_unit_list": units, "name": meta.get("product", ""), "meta_data": dumps(meta)}


def api_catalog(path: Path) -> dict:
    """An MMODA catalogue table as the API catalogue the dispatcher sends with an image."""
    with fits.open(path) as hdul:
        table = hdul[1]
        names = list(table.columns.names)
        columns = []
        for name in names:
            values = table.data[name]
            if values.dtype.kind in "SU":
                columns.append([str(v).strip() for v in values])
            else:
                columns.append([_clean(v.item()) for v in np.asarray(values)])
        descr = [[n, str(table.data.dtype[n])] for n in names]
    return {
        "cat_frame": "fk5",
        "cat_coord_units": "deg",
        "cat_column_list": columns,
        "cat_column_names": names,
        "cat_column_descr": descr,
        "cat_lat_name": "dec",
        "cat_lon_name": "ra",
    }


class Standin:
    """The server: ``url`` to give the client, ``requests`` received, ``fail_next`` to make
    the next analysis fail."""

    def __init__(self, fixtures: Path, acs_lightcurve: Path, polls_before_done: int = 1):
        self.fixtures = Path(fixtures)
        self.acs_lightcurve = acs_lightcurve
        self.polls_before_done = polls_before_done
        self.requests: list[dict] = []
        self.jobs: dict[str, dict] = {}
        self.fail_next = False
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> Standin:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def analyses(self, product_type: str | None = None) -> list[dict]:
        """The first request of each job (its parameters), optionally of one product type."""
        return [
            r
            for r in self.requests
            if r.get("query_status") == "new"
            and (product_type is None or r.get("product_type") == product_type)
        ]

    # ------------------------------------------------------------------ products

    def _products(self, params: dict) -> dict:
        product = params["product_type"]
        f = self.fixtures
        selected = json.loads(params.get("selected_catalog") or "null") or {}
        requested = (selected.get("cat_column_list") or [[], []])[1]
        first = requested[0] if requested else ""
        band = None
        if "E1_keV" in params and "E2_keV" in params:
            band = (float(params["E1_keV"]), float(params["E2_keV"]))
        if product == "isgri_image":
            return {
                "numpy_data_product_list": [
                    encode_fits(f / "isgri/mosaic_crab_20-40keV.fits", {"product": "mosaic"}, band)
                ],
                "catalog": api_catalog(f / "isgri/catalog_crab_field.fits"),
            }
        if product == "jemx_image":
            return {
                "numpy_data_product_list": [
                    encode_fits(f / "jemx/mosaic_jmx1_crab.fits.gz", {"product": "mosaic"}, band)
                ],
                "catalog": api_catalog(f / "jemx/catalog_jmx1.fits"),
            }
        if product in ("isgri_spectrum", "jemx_spectrum"):
            stem = (
                f / "isgri/spectrum_1A_0535+262_osa11"
                if product == "isgri_spectrum"
                else f / "jemx/spectrum_crab_jmx1"
            )
            prefix = product.split("_")[0]
            files = [
                (Path(f"{stem}.fits.gz"), "spectrum"),
                (Path(f"{stem}_arf.fits.gz"), "arf"),
                (Path(f"{stem}_rmf.fits.gz"), "rmf"),
            ]
            return {
                "numpy_data_product_list": [
                    encode_fits(path, {"src_name": first, "product": f"{prefix}_{role}"})
                    for path, role in files
                ]
            }
        if product in ("isgri_lc", "jemx_lc"):
            path = (
                f / "isgri/lc_OAO_1657-415.fits"
                if product == "isgri_lc"
                else f / "jemx/lc_jmx1_96_bins.fits.gz"
            )
            return {
                "numpy_data_product_list": [
                    encode_fits(path, {"src_name": first, "product": product})
                ]
            }
        if product == "spi_acs_lc":
            return {
                "numpy_data_product_list": [
                    encode_fits(self.acs_lightcurve, {"src_name": "query", "product": product})
                ]
            }
        raise ValueError(f"unknown product {product}")

    # ------------------------------------------------------------------ HTTP

    def _answer(self, params: dict) -> tuple[int, dict]:
        product = params.get("product_type", "")
        if product not in PARAMETERS:
            return 400, {"error": f"unknown product_type {product!r}"}
        job_id = params.get("job_id")
        with self.lock:
            if not job_id:
                job_id = uuid.uuid4().hex[:16]
                self.jobs[job_id] = {"polls": 0, "fail": self.fail_next}
                self.fail_next = False
            job = self.jobs.get(job_id)
            if job is None:
                return 400, {"error": "unknown job"}
            job["polls"] += 1
            polls = job["polls"]
        monitor = {"job_id": job_id, "session_id": params.get("session_id", ""), "status": ""}
        exit_status = {
            "status": 0,
            "message": "",
            "error_message": "",
            "debug_message": "",
            "comment": "",
            "warning": "",
        }
        if polls <= self.polls_before_done:
            return 200, {
                "query_status": "submitted",
                "job_monitor": {**monitor, "status": "submitted"},
                "exit_status": exit_status,
                "products": {},
            }
        if job["fail"]:
            return 200, {
                "query_status": "failed",
                "job_monitor": {**monitor, "status": "failed"},
                "exit_status": {
                    **exit_status,
                    "status": 1,
                    "message": "failed: analysis",
                    "error_message": "no data",
                },
                "products": {},
            }
        analysis = {k: v for k, v in params.items() if k not in ("job_id", "query_status")}
        return 200, {
            "query_status": "done",
            "job_monitor": {**monitor, "status": "done"},
            "exit_status": exit_status,
            "products": {**self._products(params), "analysis_parameters": analysis},
        }

    def _handler(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def _params(self) -> dict:
                query = parse_qs(urlparse(self.path).query, keep_blank_values=True)
                if self.command == "POST":
                    length = int(self.headers.get("Content-Length") or 0)
                    body = self.rfile.read(length).decode()
                    query.update(parse_qs(body, keep_blank_values=True))
                params = {k: (v if k == "scw_list" else v[-1]) for k, v in query.items()}
                if "scw_list" in params:
                    params["scw_list"] = [s for v in params["scw_list"] for s in v.split(",") if s]
                return params

            def _send(self, status: int, body) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self) -> None:
                path = urlparse(self.path).path.rstrip("/")
                params = self._params()
                if path.endswith("/api/par-names"):
                    self._send(200, PARAMETERS.get(params.get("product_type", ""), []))
                    return
                if path.endswith("/run_analysis"):
                    with standin.lock:
                        standin.requests.append(params)
                    status, body = standin._answer(params)
                    self._send(status, body)
                    return
                self._send(404, {"error": "not found"})

            do_GET = _route
            do_POST = _route

        return Handler
