"""The MMODA backend: the same products requested from the MMODA service with ``oda_api``.

For each unit the backend asks MMODA (``DispatcherAPI.get_product``) for the mosaic of every
image band with its catalogue (``<instrument>_image``), then for the spectra and light curves
of the sources detected above the threshold (``<instrument>_spectrum``, ``<instrument>_lc``
with the detections as ``selected_catalog``), and for GRB triggers for the SPI-ACS light curve
(``spi_acs_lc``). The client submits a job, polls it until done and returns the products,
which are saved as FITS files (the catalogue as MMODA's API-catalogue JSON) and listed in the
unit's manifests like the local backend's. New sources keep MMODA's labels (``NEW_1``...); the
ingest turns them into provisional names.

``oda_api`` is imported when the backend is used, so the rest of the pipeline does not need
it. Transport failures (connection refused, timeouts) are retried a few times by the client,
then raised: the Celery task retries later; a failed analysis (MMODA answers "failed") fails
the unit with MMODA's message.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
from astropy.io import fits
from django.conf import settings

from ...readers.catalog import read_api_catalog
from ..archive import GrbTrigger
from ..config import band_label, lightcurve_members
from ..measure import error_radius_deg
from .base import Backend, StepContext, read_json, write_json

log = logging.getLogger(__name__)

DETECTIONS = "detections.json"


class MmodaError(RuntimeError):
    """MMODA refused or failed a request (the message is MMODA's)."""


class MmodaBackend(Backend):
    name = "mmoda"

    def __init__(self, params):
        super().__init__(params)
        self.url = params.mmoda_url or settings.GALLERY_MMODA_URL

    # ------------------------------------------------------------------ client

    def _request(self, **parameters):
        import requests
        from oda_api.api import DispatcherAPI, RemoteException

        api = DispatcherAPI(url=self.url, instrument="mock", token=settings.GALLERY_MMODA_TOKEN)
        # The client's defaults retry for half an hour; a task should fail fast and be retried
        # by Celery instead.
        api.n_max_tries = settings.GALLERY_MMODA_TRIES
        api.retry_sleep_s = settings.GALLERY_MMODA_RETRY_SECONDS
        api.timeout = settings.GALLERY_MMODA_TIMEOUT_SECONDS
        product = parameters.pop("product")
        instrument_name = parameters.pop("instrument")
        try:
            result = api.get_product(
                product=product,
                instrument=instrument_name,
                product_type="Real",
                silent=True,
                **parameters,
            )
        except RemoteException as exc:
            message = getattr(exc, "message", None) or str(exc)
            if api.is_failed:  # MMODA ran the analysis and it failed: trying again won't help
                detail = getattr(exc, "debug_message", "") or ""
                raise MmodaError(f"MMODA {product} failed: {message} {detail}".strip()) from None
            raise ConnectionError(f"MMODA at {self.url}: {message.strip()[:300]}") from exc
        except requests.exceptions.RequestException as exc:
            raise ConnectionError(f"MMODA at {self.url}: {exc}") from exc
        if result is None:
            raise MmodaError(f"MMODA returned nothing for {product}")
        return result

    def _common(self, ctx: StepContext) -> dict:
        spec = ctx.spec
        parameters = {
            "instrument": spec.mmoda_instrument,
            "osa_version": f"OSA{ctx.params.osa_label}",
            "scw_list": [s.scw_id for s in ctx.unit.scws],
        }
        if spec.code.startswith("jemx"):
            parameters["jemx_num"] = spec.code[-1]
        return parameters

    # ------------------------------------------------------------------ steps

    def mosaic(self, ctx: StepContext) -> str:
        spec = ctx.spec
        entries = []
        ctx.meta.scw_ids = [s.scw_id for s in ctx.unit.scws]
        for band in spec.image_bands_kev:
            result = self._request(
                product=f"{spec.mmoda_prefix}_image",
                E1_keV=band[0],
                E2_keV=band[1],
                detection_threshold=ctx.params.threshold,
                **self._common(ctx),
            )
            label = band_label(band)
            image_name = f"{spec.code}_mosaic_{label}.fits"
            images = [p for p in result._p_list if hasattr(p, "write_fits_file")]
            if not images:
                raise MmodaError(f"MMODA sent no image for {label}")
            images[0].write_fits_file(str(ctx.workdir / image_name), overwrite=True)
            entries.append({"product": "image", "files": [image_name], "band": list(band)})
            catalogues = [p for p in result._p_list if hasattr(p, "get_api_dictionary")]
            if catalogues:
                catalogue_name = f"{spec.code}_catalog_{label}.json"
                write_json(
                    ctx.workdir / catalogue_name,
                    catalogues[0].get_api_dictionary(dump_string=False),
                )
                entries.append(
                    {"product": "catalog", "files": [catalogue_name], "band": list(band)}
                )
        ctx.write_manifest("mosaic", entries)
        return f"{len(entries)} files from MMODA for {len(ctx.unit.scws)} ScWs"

    def detect(self, ctx: StepContext) -> str:
        rows: dict[tuple[float, float], dict] = {}
        for entry in ctx.read_manifest("mosaic"):
            if entry["product"] != "catalog":
                continue
            data = read_json(ctx.workdir / entry["files"][0])
            for source in read_api_catalog(data)["sources"]:
                significance = source.significance or 0.0
                if significance < ctx.params.threshold:
                    continue
                key = (round(source.ra_deg, 3), round(source.dec_deg, 3))
                if key not in rows or rows[key]["significance"] < significance:
                    rows[key] = {
                        "ra_deg": source.ra_deg,
                        "dec_deg": source.dec_deg,
                        "significance": significance,
                        "err_rad_deg": source.error_radius_deg
                        or error_radius_deg(significance, ctx.spec.psf_fwhm_deg),
                        "mmoda_name": source.name or "",
                        "band": list(entry["band"]),
                    }
        named = ctx.name_sources(list(rows.values()), ctx.spec.code)
        write_json(ctx.workdir / DETECTIONS, named)
        ctx.write_manifest("detect", [])  # MMODA's catalogues are ingested with the mosaics
        return f"{len(named)} source(s) above {ctx.params.threshold:g} sigma in MMODA's catalogues"

    def _selected_catalog(self, detections: list[dict]) -> str:
        names = [d.get("mmoda_name") or d["name"] for d in detections]
        return json.dumps(
            {
                "cat_frame": "fk5",
                "cat_coord_units": "deg",
                "cat_column_list": [
                    list(range(len(detections))),
                    names,
                    [d["significance"] for d in detections],
                    [d["target_ra_deg"] for d in detections],
                    [d["target_dec_deg"] for d in detections],
                    [-32768] * len(detections),
                    [2] * len(detections),
                    [0] * len(detections),
                    [d["err_rad_deg"] for d in detections],
                ],
                "cat_column_names": [
                    "meta_ID",
                    "src_names",
                    "significance",
                    "ra",
                    "dec",
                    "NEW_SOURCE",
                    "ISGRI_FLAG",
                    "FLAG",
                    "ERR_RAD",
                ],  # fmt: skip
                "cat_column_descr": [
                    ["meta_ID", "<i8"],
                    ["src_names", "<U40"],
                    ["significance", "<f8"],
                    ["ra", "<f8"],
                    ["dec", "<f8"],
                    ["NEW_SOURCE", "<i8"],
                    ["ISGRI_FLAG", "<i8"],
                    ["FLAG", "<i8"],
                    ["ERR_RAD", "<f8"],
                ],  # fmt: skip
                "cat_lat_name": "dec",
                "cat_lon_name": "ra",
            }
        )

    def extract(self, ctx: StepContext) -> str:
        spec = ctx.spec
        detections = read_json(ctx.workdir / DETECTIONS)
        if not detections:
            ctx.write_manifest("extract", [])
            return "no source to extract"
        selected = self._selected_catalog(detections)
        band_lo, band_hi = spec.image_bands_kev[0][0], spec.image_bands_kev[-1][1]
        entries = []
        spectra = self._request(
            product=f"{spec.mmoda_prefix}_spectrum",
            E1_keV=band_lo,
            E2_keV=band_hi,
            selected_catalog=selected,
            **self._common(ctx),
        )
        # MMODA names its products after the requested rows (its labels for new sources).
        names = {(d.get("mmoda_name") or d["name"]): d["name"] for d in detections}
        entries += self._save_spectra(ctx, spectra._p_list, names)
        lc_band, _ = lightcurve_members(spec, spec.spectral_bands_kev)
        durations = [(s.t_stop_ijd - s.t_start_ijd) * 86400.0 for s in ctx.unit.scws]
        curves = self._request(
            product=f"{spec.mmoda_prefix}_lc",
            E1_keV=lc_band[0],
            E2_keV=lc_band[1],
            selected_catalog=selected,
            time_bin=round(max(durations)) if durations else 3000,
            time_bin_format="sec",
            **self._common(ctx),
        )
        for index, product in enumerate(p for p in curves._p_list if hasattr(p, "write_fits_file")):
            name = f"{spec.code}_lc_{index}_{_stem(product)}.fits"
            product.write_fits_file(str(ctx.workdir / name), overwrite=True)
            entries.append(
                {
                    "product": "lightcurve",
                    "files": [name],
                    "band": list(lc_band),
                    "source": _source_name(product, names),
                }
            )
        ctx.write_manifest("extract", entries)
        n_spectra = sum(1 for e in entries if e["product"] == "spectrum")
        return f"{n_spectra} spectra, {len(entries) - n_spectra} light curves from MMODA"

    def _save_spectra(self, ctx: StepContext, products: list, names: dict) -> list[dict]:
        """MMODA sends, per source, the spectrum, the ARF and the RMF (in that order, each
        labelled in its meta_data); they are saved under names that say which is which."""
        entries, current = [], {}
        for product in products:
            if not hasattr(product, "write_fits_file"):
                continue
            kind = str((getattr(product, "meta_data", {}) or {}).get("product", "")).lower()
            role = "arf" if kind.endswith("arf") else "rmf" if kind.endswith("rmf") else None
            if role is None:
                role = (
                    "spectrum"
                    if "spectrum" not in current
                    else ("arf" if "arf" not in current else "rmf")
                )
            if role == "spectrum" and current:
                entries.append(self._spectrum_entry(current))
                current = {}
            if role == "spectrum":
                current["source"] = _source_name(product, names)
            name = f"{ctx.spec.code}_{len(entries)}_{_stem(product)}_{role}.fits"
            product.write_fits_file(str(ctx.workdir / name), overwrite=True)
            current[role] = name
        if current:
            entries.append(self._spectrum_entry(current))
        return [e for e in entries if e is not None]

    @staticmethod
    def _spectrum_entry(files: dict) -> dict | None:
        if "spectrum" not in files or "rmf" not in files:
            return None
        ordered = [files["spectrum"], files["rmf"]] + ([files["arf"]] if "arf" in files else [])
        return {"product": "spectrum", "files": ordered, "source": files.get("source") or ""}

    def grb_lightcurve(self, ctx: StepContext, trigger: GrbTrigger, path: Path) -> Path | None:
        from products import timeline

        t1 = timeline.format_time(timeline.ijd_to_time(trigger.t0_ijd - 150 / 86400), "isot")
        t2 = timeline.format_time(timeline.ijd_to_time(trigger.t0_ijd + 350 / 86400), "isot")
        parameters = {"T1": t1, "T2": t2, "time_bin": 1, "product": "spi_acs_lc"}
        if trigger.ra_deg is not None:
            parameters.update(RA=trigger.ra_deg, DEC=trigger.dec_deg)
        result = self._request(instrument="spi_acs", **parameters)
        products = [p for p in result._p_list if hasattr(p, "write_fits_file")]
        if not products:
            ctx.log(f"{trigger.name}: MMODA sent no SPI-ACS light curve")
            return None
        products[0].write_fits_file(str(path), overwrite=True)
        _mark_spi_acs(path, trigger)
        return path


def _source_name(product, names: dict) -> str:
    """The Gallery's name of the source a MMODA product is about ('' when it does not say)."""
    meta = getattr(product, "meta_data", {}) or {}
    label = str(meta.get("src_name") or "").strip()
    return names.get(label, label)


def _stem(product) -> str:
    meta = getattr(product, "meta_data", {}) or {}
    name = str(meta.get("src_name") or getattr(product, "name", "") or "product")
    return "".join(c if c.isalnum() or c in "+-." else "_" for c in name).strip("_")[:40]


def _mark_spi_acs(path: Path, trigger: GrbTrigger) -> None:
    """Make sure the saved SPI-ACS table says what it is (the ingest reads INSTRUME and NAME)."""
    with fits.open(path, mode="update") as hdul:
        for hdu in hdul[1:]:
            if isinstance(hdu, fits.BinTableHDU) and {"TIME", "RATE"} <= set(hdu.columns.names):
                hdu.header.setdefault("INSTRUME", "SPI-ACS")
                hdu.header.setdefault("NAME", trigger.name)
                if not any(k in hdu.header for k in ("TIMEDEL",)) and len(hdu.data) > 1:
                    step = np.median(np.diff(np.asarray(hdu.data["TIME"], dtype=float)))
                    hdu.header["TIMEDEL"] = float(step)
