"""The local backend: products computed from the archive's per-ScW sky images.

``mosaic`` co-adds the ScW images of the unit in every spectral band (``mosaic.Mosaic``),
sums them into the image bands and writes one OSA mosaic per image band; it also keeps, per
ScW, the light-curve band's intensity and variance (``lc/<scw>.npy``) so that light curves
need not read the archive again. ``detect`` finds the sources of each image band's mosaic,
merges them across bands, names them (catalogue match or provisional name) and writes the
source list. ``extract`` measures each source in every spectral band of the mosaic (its
spectrum, with the band response) and in every ScW (its light curve).
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from .. import grb as grb_lc
from ..archive import CorruptScw, GrbTrigger
from ..config import band_label, image_bands, lightcurve_members
from ..measure import Measurement, detect, error_radius_deg, fit_source, merge
from ..mosaic import Grid, Mosaic, combine_bands, effective_psf_sigma_pix, make_grid
from ..osafits import (
    LightCurveBin,
    SourceRow,
    Target,
    write_acs_lightcurve,
    write_lightcurve,
    write_mosaic,
    write_response,
    write_source_list,
    write_spectrum,
)
from ..physics import band_response
from ..scwimage import read_scw_image
from .base import Backend, StepContext, read_json, write_json

FINE = "fine.npz"
#: A spectrum needs this many contiguous bands (its channels) to say anything of its shape.
MIN_SPECTRAL_BANDS = 5
DETECTIONS = "detections.json"


def _bands(value) -> list[tuple[float, float]]:
    return [(float(a), float(b)) for a, b in value]


class LocalBackend(Backend):
    name = "local"

    # ------------------------------------------------------------------ mosaic

    def mosaic(self, ctx: StepContext) -> str:
        spec, unit = ctx.spec, ctx.unit
        counts = Counter(tuple(tuple(b) for b in s.bands) for s in unit.scws)
        bands = _bands(counts.most_common(1)[0][0]) if counts else []
        if not bands:
            ctx.write_manifest("mosaic", [])
            return "no ScW image with energy bands"
        grid = make_grid(unit.scws)
        mosaic = Mosaic(grid, bands)
        lc_band, lc_members = lightcurve_members(spec, bands)
        lc_dir = ctx.workdir / "lc"
        lc_dir.mkdir(parents=True, exist_ok=True)
        index, used = [], []
        for info in unit.scws:
            try:
                image = read_scw_image(info.scw_id, info.path, spec, bands)
            except CorruptScw as exc:
                ctx.skip_scw(info.scw_id, str(exc))
                continue
            if not mosaic.add(image):
                ctx.skip_scw(info.scw_id, "no valid pixel on the mosaic grid")
                continue
            used.append(info.scw_id)
            lc_i, lc_v = combine_bands(
                np.stack(image.intensity), np.stack(image.variance), lc_members
            )
            exposure = (
                image.exposure
                if image.exposure is not None
                else np.where(lc_v > 0, image.exposure_s, 0.0).astype(np.float32)
            )
            name = f"{info.scw_id}.npy"
            np.save(lc_dir / name, np.stack([lc_i, lc_v, exposure]).astype(np.float32))
            index.append(
                {
                    "scw_id": info.scw_id,
                    "file": name,
                    "t_start": image.t_start_ijd,
                    "t_stop": image.t_stop_ijd,
                    "wcs": image.wcs.to_header_string(),
                }
            )
        if not used:
            ctx.write_manifest("mosaic", [])
            return f"no usable ScW among {len(unit.scws)}"
        intensity, variance, exposure = mosaic.result()
        t_start = min(e["t_start"] for e in index)
        t_stop = max(e["t_stop"] for e in index)
        np.savez(
            ctx.workdir / FINE,
            intensity=intensity,
            variance=variance,
            exposure=exposure,
            bands=np.array(bands),
        )
        write_json(
            ctx.workdir / "mosaic.json",
            {
                "grid": grid.header().tostring(),
                "bands": bands,
                "lc_band": list(lc_band),
                "scws": used,
                "lc_index": index,
                "t_start": t_start,
                "t_stop": t_stop,
            },
        )
        ctx.meta.scw_ids = used
        entries = []
        for band, members in image_bands(spec, bands):
            band_i, band_v = combine_bands(intensity, variance, members)
            name = f"{spec.code}_mosaic_{band_label(band)}.fits"
            write_mosaic(
                ctx.workdir / name,
                spec,
                grid.cards(),
                band,
                band_i,
                band_v,
                exposure,
                t_start=t_start,
                t_stop=t_stop,
                exposure_s=float(exposure.max()),
                meta=ctx.meta,
            )
            entries.append({"product": "image", "files": [name], "band": list(band)})
        ctx.write_manifest("mosaic", entries)
        return (
            f"{len(used)} of {len(unit.scws)} ScWs, {len(bands)} bands, "
            f"grid {grid.shape[1]}x{grid.shape[0]}"
        )

    def _load(self, ctx: StepContext):
        info_path = ctx.workdir / "mosaic.json"
        if not info_path.is_file():
            return None
        info = read_json(info_path)
        grid = Grid.from_header(fits.Header.fromstring(info["grid"]))
        data = np.load(ctx.workdir / FINE)
        ctx.meta.scw_ids = info["scws"]
        return info, grid, data

    def _psf(self, ctx: StepContext, grid: Grid) -> tuple[float, float]:
        """(effective PSF sigma in grid pixels, flux correction of the resampling)."""
        sigma = ctx.spec.psf_sigma_deg / grid.pixel_deg
        effective = effective_psf_sigma_pix(sigma)
        return effective, (effective / sigma) ** 2

    # ------------------------------------------------------------------ detect

    def detect(self, ctx: StepContext) -> str:
        spec = ctx.spec
        loaded = self._load(ctx)
        if loaded is None:
            write_json(ctx.workdir / DETECTIONS, [])
            ctx.write_manifest("detect", [])
            return "no mosaic"
        info, grid, data = loaded
        intensity, variance, exposure = data["intensity"], data["variance"], data["exposure"]
        bands = _bands(info["bands"])
        sigma, scale = self._psf(ctx, grid)
        header = grid.header()
        formed = image_bands(spec, bands)
        found: list[tuple[Measurement, int]] = []
        for index, (_, members) in enumerate(formed):
            band_i, band_v = combine_bands(intensity, variance, members)
            for m in detect(
                band_i, band_v, exposure, header, sigma, ctx.params.threshold, flux_scale=scale
            ):
                found.append((m, index))
        best_band = {id(m): index for m, index in found}
        kept = merge([m for m, _ in found], 2.0 * 2.3548 * sigma)
        rows = [
            {
                "ra_deg": m.ra_deg,
                "dec_deg": m.dec_deg,
                "significance": m.significance,
                "err_rad_deg": error_radius_deg(m.significance, spec.psf_fwhm_deg),
                "band": list(formed[best_band[id(m)]][0]),
            }
            for m in kept
        ]
        named = ctx.name_sources(rows, spec.code)
        table = []
        for row in named:
            # Fluxes at the catalogue position of a known source: a position fitted on the
            # same noise would favour upward fluctuations.
            x, y = (
                float(v)
                for v in grid.wcs.wcs_world2pix(row["target_ra_deg"], row["target_dec_deg"], 0)
            )
            fluxes, errors = [], []
            for _, members in formed:
                band_i, band_v = combine_bands(intensity, variance, members)
                m = fit_source(
                    band_i, band_v, x, y, sigma, grid.wcs, fit_position=False, flux_scale=scale
                )
                fluxes.append(m.flux if m else math.nan)
                errors.append(m.flux_error if m else math.nan)
            row["fluxes"], row["flux_errors"] = fluxes, errors
            table.append(
                SourceRow(
                    name=row["name"],
                    ra_deg=row["ra_deg"],
                    dec_deg=row["dec_deg"],
                    err_rad_deg=row["err_rad_deg"],
                    significance=row["significance"],
                    fluxes=fluxes,
                    flux_errors=errors,
                    is_new=row["is_new"],
                )
            )
        write_json(ctx.workdir / DETECTIONS, named)
        name = f"{spec.code}_source_list.fits"
        write_source_list(
            ctx.workdir / name,
            spec,
            table,
            [band for band, _ in formed],
            t_start=info["t_start"],
            t_stop=info["t_stop"],
            meta=ctx.meta,
        )
        ctx.write_manifest("detect", [{"product": "catalog", "files": [name]}])
        new = sum(1 for r in named if r["is_new"])
        return f"{len(named)} source(s) above {ctx.params.threshold:g} sigma, {new} new"

    # ------------------------------------------------------------------ extract

    def extract(self, ctx: StepContext) -> str:
        spec = ctx.spec
        loaded = self._load(ctx)
        detections = read_json(ctx.workdir / DETECTIONS) if loaded else []
        if not loaded or not detections:
            ctx.write_manifest("extract", [])
            return "no source to extract"
        info, grid, data = loaded
        intensity, variance, exposure = data["intensity"], data["variance"], data["exposure"]
        bands = _bands(info["bands"])
        sigma, scale = self._psf(ctx, grid)
        contiguous = all(abs(bands[i][1] - bands[i + 1][0]) < 1e-6 for i in range(len(bands) - 1))
        response = None
        if len(bands) >= MIN_SPECTRAL_BANDS and contiguous:
            response = band_response(spec, [b[0] for b in bands] + [bands[-1][1]])
        else:
            ctx.log(
                f"{len(bands)} band(s) in the ScW images: no spectra "
                f"({MIN_SPECTRAL_BANDS} contiguous bands or more are needed)"
            )
        rmf_name, arf_name = f"{spec.code}_rmf.fits", f"{spec.code}_arf.fits"
        if response is not None:
            # One response serves every spectrum of the mosaic (same bands, same instrument).
            write_response(ctx.workdir / rmf_name, ctx.workdir / arf_name, spec, response, ctx.meta)
        stack = self._lightcurve_stack(ctx, info)
        entries = []
        n_spectra = n_lcs = 0
        for row in detections:
            target = Target(row["name"], row["target_ra_deg"], row["target_dec_deg"])
            stem = _file_stem(target.name)
            x, y = (float(v) for v in grid.wcs.wcs_world2pix(target.ra_deg, target.dec_deg, 0))
            if response is not None:
                rate, error = [], []
                for k in range(len(bands)):
                    m = fit_source(
                        intensity[k], variance[k], x, y, sigma, grid.wcs,
                        fit_position=False, flux_scale=scale,
                    )  # fmt: skip
                    rate.append(m.flux * spec.rate_per_intensity if m else math.nan)
                    error.append(m.flux_error * spec.rate_per_intensity if m else math.nan)
                ix, iy = int(round(x)), int(round(y))
                source_exposure = (
                    float(exposure[iy, ix])
                    if 0 <= iy < exposure.shape[0] and (0 <= ix < exposure.shape[1])
                    else 0.0
                )
                files = [f"{stem}_{spec.code}_spectrum.fits", rmf_name, arf_name]
                write_spectrum(
                    ctx.workdir / files[0],
                    spec,
                    target,
                    np.array(rate),
                    np.array(error),
                    respfile=rmf_name,
                    ancrfile=arf_name,
                    t_start=info["t_start"],
                    t_stop=info["t_stop"],
                    exposure_s=max(source_exposure, 1.0),
                    meta=ctx.meta,
                )
                entries.append({"product": "spectrum", "files": files, "source": target.name})
                n_spectra += 1
            bins = self._lightcurve(ctx, stack, target)
            if bins:
                name = f"{stem}_{spec.code}_lc.fits"
                write_lightcurve(
                    ctx.workdir / name,
                    spec,
                    target,
                    bins,
                    tuple(info["lc_band"]),
                    meta=ctx.meta,
                )
                entries.append(
                    {
                        "product": "lightcurve",
                        "files": [name],
                        "source": target.name,
                        "band": info["lc_band"],
                    }
                )
                n_lcs += 1
        ctx.write_manifest("extract", entries)
        return f"{n_spectra} spectra, {n_lcs} light curves"

    def _lightcurve_stack(self, ctx: StepContext, info: dict) -> list[dict]:
        stack = []
        for entry in info["lc_index"]:
            path = ctx.workdir / "lc" / entry["file"]
            if not path.is_file():
                continue
            header = fits.Header.fromstring(entry["wcs"])
            wcs = WCS(header, naxis=2).celestial
            stack.append({**entry, "data": np.load(path, mmap_mode="r"), "wcs_obj": wcs})
        return stack

    def _lightcurve(self, ctx: StepContext, stack: list[dict], target: Target) -> list:
        spec = ctx.spec
        bins = []
        for entry in stack:
            wcs = entry["wcs_obj"]
            pixel = float(np.sqrt(abs(np.linalg.det(wcs.pixel_scale_matrix))))
            x, y = (float(v) for v in wcs.wcs_world2pix(target.ra_deg, target.dec_deg, 0))
            data = entry["data"]
            m = fit_source(
                data[0], data[1], x, y, spec.psf_sigma_deg / pixel, wcs, fit_position=False
            )
            if m is None:
                continue
            duration = (entry["t_stop"] - entry["t_start"]) * 86400.0
            ix, iy = int(round(x)), int(round(y))
            exposure = float(data[2][iy, ix]) if duration > 0 else 0.0
            bins.append(
                LightCurveBin(
                    scw_id=entry["scw_id"],
                    t_start=entry["t_start"],
                    t_stop=entry["t_stop"],
                    rate=m.flux * spec.rate_per_intensity,
                    error=m.flux_error * spec.rate_per_intensity,
                    fracexp=min(max(exposure / duration, 0.0), 1.0) if duration > 0 else 0.0,
                )
            )
        return bins

    # ------------------------------------------------------------------ GRBs

    def grb_lightcurve(self, ctx: StepContext, trigger: GrbTrigger, path: Path) -> Path | None:
        files = grb_lc.rate_files(ctx.params.archive, ctx.plan.revolution)
        rates = []
        for file in files:
            try:
                rates.append(grb_lc.read_rates(file))
            except (OSError, ValueError, KeyError, StopIteration) as exc:
                ctx.log(f"SPI-ACS rates {file.name} skipped: {exc}")
        curve = grb_lc.lightcurve(rates, trigger.t0_ijd)
        if curve is None:
            ctx.log(f"{trigger.name}: no SPI-ACS rates around T0 in the archive")
            return None
        return write_acs_lightcurve(
            path,
            Target(trigger.name, trigger.ra_deg, trigger.dec_deg),
            trigger.t0_ijd,
            curve.time_ijd,
            curve.bin_s,
            curve.rate,
            curve.error,
            curve.background,
            meta=ctx.meta,
        )


def _file_stem(name: str) -> str:
    return "".join(c if c.isalnum() or c in "+-." else "_" for c in name).strip("_") or "source"
