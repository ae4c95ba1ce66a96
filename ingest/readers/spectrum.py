"""Read OGIP spectra (PHA type I) with their responses (RMF, ARF) as OSA and MMODA write them.

The files are recognised by their headers and columns, never by their names. The quirks of real
INTEGRAL products are handled here, so that the fitter sees one convention only: a response
matrix in cm^2 (effective area times redistribution) whose columns follow the spectrum's rows.

- OSA 10 normalises the RMF (rows sum to 1) and keeps the effective area in the ARF; OSA 11
  puts the area in the RMF and writes an ARF of ones. ARF times RMF is right for both; without
  an ARF file the RMF must hold the area itself (or the RMF file must carry an ARF extension,
  as the JEM-X RMF does).
- Extension names vary (``ISGR-RMF.-RSP``/``SPECRESP MATRIX``, ``ISGR-EBDS-MOD``/``EBOUNDS``,
  ``ISGR-ARF.-RSP``/``SPECRESP``...), so HDUCLAS1/HDUCLAS2 and the columns decide.
- Channel numbers are labels with per-file origins: the JEM-X spectrum counts 1..16, its
  EBOUNDS 0..15 and its matrix starts at TLMIN of F_CHAN = 1. Each table is aligned on its own
  first channel.
- N_GRP/F_CHAN/N_CHAN/MATRIX may be fixed-width or variable-length columns.
- A spectrum may give COUNTS instead of RATE, lack QUALITY or SYS_ERR (or give them as
  keywords), and flag NaN rates with QUALITY; a NaN rate is bad whatever its QUALITY says.
- OSA 10 ISGRI ARFs and matrices hold small negative values above ~700 keV; they are kept
  as they are, like XSPEC and sherpa keep them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from astropy.io import fits

from ingest.fitsio import open_fits
from ingest.readers.base import IngestError, ResponseData, SpectrumData

PathLike = str | Path

# Extension names written by OSA, MMODA and OGIP tools, upper case.
_PHA_EXTNAMES = {"SPECTRUM", "ISGR-EVTS-SPE", "JMX1-PHA1-SPE", "JMX2-PHA1-SPE", "SPI.-PHA1-SPE"}
_MATRIX_EXTNAMES = {"SPECRESP MATRIX", "MATRIX", "ISGR-RMF.-RSP", "JMX1-RMF.-RSP", "JMX2-RMF.-RSP"}
_EBOUNDS_EXTNAMES = {"EBOUNDS", "ISGR-EBDS-MOD", "JMX1-FBDS-MOD", "JMX2-FBDS-MOD"}
_ARF_EXTNAMES = {"SPECRESP", "ISGR-ARF.-RSP", "JMX1-AXIS-ARF", "JMX2-AXIS-ARF"}

# QUALITY given to channels the file calls good but whose rate or error is unusable
# (OGIP: 1 = "defined bad by the software").
QUALITY_BAD_DATA = 1

# A matrix whose rows never sum above this is normalised (a pure redistribution, no area).
_NORMALISED_ROW_SUM = 1.5


# --------------------------------------------------------------------------------------------
# Recognising HDUs


def _upper(header: fits.Header, key: str) -> str:
    return str(header.get(key, "")).strip().upper()


def _columns(hdu: fits.hdu.base.ExtensionHDU) -> set[str]:
    if not isinstance(hdu, fits.BinTableHDU):
        return set()
    return {name.upper() for name in hdu.columns.names}


def _is_matrix_hdu(hdu) -> bool:
    cols = _columns(hdu)
    if "MATRIX" not in cols:
        return False
    header = hdu.header
    return (
        _upper(header, "HDUCLAS2") == "RSP_MATRIX"
        or _upper(header, "EXTNAME") in _MATRIX_EXTNAMES
        or {"ENERG_LO", "ENERG_HI"} <= cols
    )


def _is_ebounds_hdu(hdu) -> bool:
    cols = _columns(hdu)
    if not {"E_MIN", "E_MAX"} <= cols:
        return False
    header = hdu.header
    return (
        _upper(header, "HDUCLAS2") == "EBOUNDS"
        or _upper(header, "EXTNAME") in _EBOUNDS_EXTNAMES
        or "CHANNEL" in cols
    )


def _is_arf_hdu(hdu) -> bool:
    cols = _columns(hdu)
    if not {"SPECRESP", "ENERG_LO", "ENERG_HI"} <= cols or "MATRIX" in cols:
        return False
    header = hdu.header
    extname = _upper(header, "EXTNAME")
    return (
        _upper(header, "HDUCLAS2") == "SPECRESP"
        or extname in _ARF_EXTNAMES
        or extname.endswith("-ARF")
        or _upper(header, "HDUCLAS1") == "RESPONSE"
    )


def _is_spectrum_hdu(hdu) -> bool:
    """A PHA table of type I or II: CHANNEL with RATE or COUNTS, marked as a spectrum."""
    cols = _columns(hdu)
    if "CHANNEL" not in cols or not ({"RATE", "COUNTS"} & cols):
        return False
    header = hdu.header
    if _upper(header, "HDUCLAS1") == "SPECTRUM" or _upper(header, "EXTNAME") in _PHA_EXTNAMES:
        return True
    # Unlabelled: accept a plain channel table, but not a light curve or a response table.
    return not ({"TIME", "ENERG_LO", "E_MIN"} & cols)


def _is_type_two(hdu) -> bool:
    """PHA type II holds one spectrum per row (a vector RATE/COUNTS column)."""
    if _upper(hdu.header, "HDUCLAS4") == "TYPE:II":
        return True
    name = "RATE" if "RATE" in _columns(hdu) else "COUNTS"
    return np.ndim(hdu.data[name]) > 1


def classify_spectral_hdul(hdul: fits.HDUList) -> str | None:
    """Kind of spectral file: ``'pha'``, ``'rmf'``, ``'arf'``, or None for anything else.

    A file with a response matrix is an RMF even when it also holds ARF extensions (the JEM-X
    RMF does). ``'pha'`` means a PHA type I table that ``find_spectrum_hdu`` returns (type II
    files, several spectra in one table, are not spectra the Gallery can hold). Only headers
    and columns are read, never the file name.
    """
    hdus = list(hdul)[1:]
    if any(_is_matrix_hdu(hdu) for hdu in hdus):
        return "rmf"
    if find_spectrum_hdu(hdul) is not None:
        return "pha"
    if any(_is_arf_hdu(hdu) for hdu in hdus):
        return "arf"
    return None


def find_spectrum_hdu(hdul: fits.HDUList) -> fits.BinTableHDU | None:
    """The first PHA type I table of the file, or None when it holds none."""
    for hdu in list(hdul)[1:]:
        if _is_spectrum_hdu(hdu) and not _is_type_two(hdu):
            return hdu
    return None


# --------------------------------------------------------------------------------------------
# Helpers


@contextmanager
def _open_fits(path: PathLike, what: str) -> Iterator[fits.HDUList]:
    """Open a FITS file (parsed once per ingest, see ingest.fitsio) and turn every low-level
    failure into a one-line IngestError."""
    name = Path(path).name
    if not Path(path).exists():
        raise IngestError(f"{what} file {name} not found")
    try:
        with open_fits(Path(path)) as hdul:
            yield hdul
    except IngestError as exc:
        if str(exc).startswith(what) or f"{what} file" in str(exc):
            raise
        raise IngestError(f"{what} file {name} is not a readable FITS file ({exc})") from None
    except (OSError, ValueError, TypeError, KeyError, IndexError, EOFError) as exc:
        # Malformed tables show up only when the data are read.
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise IngestError(f"{what} file {name} is damaged or malformed: {reason}") from exc


def _column_tlmin(hdu: fits.BinTableHDU, column: str) -> int | None:
    names = [n.upper() for n in hdu.columns.names]
    key = f"TLMIN{names.index(column) + 1}"
    value = hdu.header.get(key)
    return int(value) if value is not None else None


def _float_column(hdu: fits.BinTableHDU, name: str) -> np.ndarray:
    return np.array(hdu.data[name], dtype=np.float64)


def _per_row(values, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """A per-row column as a padded 2-D int array (rows, groups) and its per-row lengths.

    F_CHAN and N_CHAN are scalars (one group), fixed vectors or variable-length arrays.
    """
    arr = np.asarray(values)
    if arr.dtype != object:
        arr = arr.reshape(n_rows, -1).astype(np.int64)
        return arr, np.full(n_rows, arr.shape[1], dtype=np.int64)
    lengths = np.fromiter((len(np.atleast_1d(v)) for v in values), dtype=np.int64, count=n_rows)
    out = np.zeros((n_rows, max(int(lengths.max(initial=0)), 1)), dtype=np.int64)
    mask = np.arange(out.shape[1]) < lengths[:, None]
    out[mask] = np.concatenate([np.atleast_1d(v) for v in values]) if lengths.sum() else []
    return out, lengths


def _dense_matrix(hdu: fits.BinTableHDU, n_channels: int, name: str) -> np.ndarray:
    """Expand the OGIP compressed matrix into a dense (n_energy, n_channels) float array.

    Each row lists N_GRP groups of N_CHAN channels from F_CHAN; their values follow one
    another in MATRIX. The expansion is vectorised: element k of the packed data goes to
    (its row, F_CHAN of its group - first channel + its offset in the group).
    """
    data = hdu.data
    n_rows = len(data)
    cols = _columns(hdu)
    missing = {"N_GRP", "F_CHAN", "N_CHAN"} - cols
    if missing:
        raise IngestError(f"{name}: matrix lacks column(s) {', '.join(sorted(missing))}")

    first = _column_tlmin(hdu, "F_CHAN")
    f_chan, f_len = _per_row(data["F_CHAN"], n_rows)
    n_chan, n_len = _per_row(data["N_CHAN"], n_rows)
    n_grp = np.asarray(data["N_GRP"], dtype=np.int64).reshape(n_rows)
    if np.any(n_grp < 0) or np.any(n_grp > f_len) or np.any(n_grp > n_len):
        raise IngestError(f"{name}: N_GRP exceeds the groups listed in F_CHAN/N_CHAN")
    valid = np.arange(f_chan.shape[1]) < n_grp[:, None]
    if first is None:
        # OGIP's default origin is 1, but files without TLMIN that use 0 say so by using it.
        used_f = f_chan[valid & (n_chan > 0)]
        first = 0 if used_f.size and used_f.min() == 0 else 1

    group_row = np.broadcast_to(np.arange(n_rows)[:, None], valid.shape)[valid]
    group_first = f_chan[valid] - first
    group_size = n_chan[valid]
    if np.any(group_size < 0) or np.any(group_first < 0):
        raise IngestError(f"{name}: matrix groups start before the first channel")
    if np.any(group_first + group_size > n_channels):
        raise IngestError(f"{name}: matrix groups run beyond the {n_channels} channels")

    raw = data["MATRIX"]
    if np.asarray(raw).dtype != object and np.all(n_grp <= 1):
        # Common case (every ISGRI and JEM-X RMF): at most one group per row in a fixed-width
        # column, expanded by a gather without building per-element indices.
        packed = np.asarray(raw, dtype=np.float64).reshape(n_rows, -1)
        start = np.where(n_grp == 1, f_chan[:, 0] - first, 0)
        size = np.where(n_grp == 1, n_chan[:, 0], 0)
        if np.any(size > packed.shape[1]):
            raise IngestError(f"{name}: MATRIX rows are shorter than their channel groups")
        offset = np.arange(n_channels) - start[:, None]
        inside = (offset >= 0) & (offset < size[:, None])
        gathered = np.take_along_axis(packed, np.clip(offset, 0, packed.shape[1] - 1), axis=1)
        return np.where(inside, gathered, 0.0)

    total = int(group_size.sum())
    row_total = np.bincount(group_row, weights=group_size, minlength=n_rows).astype(np.int64)
    elem_row = np.repeat(group_row, group_size)
    group_start = np.cumsum(group_size) - group_size  # offset of each group in the flat list
    elem_in_group = np.arange(total) - np.repeat(group_start, group_size)
    elem_chan = np.repeat(group_first, group_size) + elem_in_group
    row_start = np.cumsum(row_total) - row_total
    elem_in_row = np.arange(total) - row_start[elem_row]

    if np.asarray(raw).dtype == object:
        lengths = np.fromiter((len(v) for v in raw), dtype=np.int64, count=n_rows)
        if np.any(lengths < row_total):
            raise IngestError(f"{name}: MATRIX rows are shorter than their channel groups")
        flat = np.concatenate([np.asarray(v, dtype=np.float64) for v in raw])
        values = flat[(np.cumsum(lengths) - lengths)[elem_row] + elem_in_row]
    else:
        packed = np.asarray(raw, dtype=np.float64).reshape(n_rows, -1)
        if np.any(row_total > packed.shape[1]):
            raise IngestError(f"{name}: MATRIX rows are shorter than their channel groups")
        values = packed[elem_row, elem_in_row]

    dense = np.bincount(
        elem_row * n_channels + elem_chan, weights=values, minlength=n_rows * n_channels
    )
    return dense.reshape(n_rows, n_channels)


def _energy_grid(hdu: fits.BinTableHDU, name: str) -> tuple[np.ndarray, np.ndarray]:
    lo = _float_column(hdu, "ENERG_LO")
    hi = _float_column(hdu, "ENERG_HI")
    if lo.size == 0:
        raise IngestError(f"{name}: the energy grid is empty")
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise IngestError(f"{name}: the energy grid holds non-finite values")
    if np.any(hi <= lo) or np.any(lo < 0) or np.any(np.diff(lo) <= 0):
        raise IngestError(f"{name}: the energy grid is not increasing")
    return lo, hi


def _read_arf(hdul: fits.HDUList, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Energy grid and effective area of the ARF in ``hdul``.

    Where several are given (the JEM-X RMF carries ``JMX1-AXIS-ARF`` and ``JMX1-IMAG-ARF``),
    the first one wins: the on-axis ARF, which is the one OSA writes as the separate ARF file.
    Their TUNIT says dm**2 but the values are cm^2 (the same numbers as the separate file's),
    so the unit is not trusted.
    """
    hdus = [hdu for hdu in list(hdul)[1:] if _is_arf_hdu(hdu)]
    if not hdus:
        raise IngestError(f"{name}: no ARF (SPECRESP) table found")
    hdu = hdus[0]
    lo, hi = _energy_grid(hdu, name)
    area = _float_column(hdu, "SPECRESP")
    if not np.all(np.isfinite(area)):
        raise IngestError(f"{name}: the effective area holds non-finite values")
    return lo, hi, area


def _channel_index(channels: np.ndarray, first: int, n_channels: int, what: str) -> np.ndarray:
    """Position of each channel number in a table whose first channel is ``first``."""
    index = np.asarray(channels, dtype=np.int64) - first
    if np.any(index < 0) or np.any(index >= n_channels):
        raise IngestError(f"{what}: channel numbers do not match the response's channels")
    return index


# --------------------------------------------------------------------------------------------
# Public readers


def read_response(
    rmf_path: PathLike, arf_path: PathLike | None, spectrum_channels: Sequence[int] | np.ndarray
) -> ResponseData:
    """Read an RMF (and ARF) into a matrix in cm^2 whose columns follow ``spectrum_channels``.

    ``spectrum_channels`` are the channel numbers of the spectrum's rows as written in its
    file; they are aligned with the response by their offset from the spectrum's first
    channel, so that a spectrum counting 1..16 matches EBOUNDS counting 0..15. Without an ARF
    file the RMF must hold the area (OSA 11); an RMF normalised to 1 then uses an ARF
    extension of its own file (JEM-X) or is refused, since fluxes would be meaningless.
    """
    rmf_name = Path(rmf_path).name
    channels = np.asarray(spectrum_channels, dtype=np.int64).ravel()
    with _open_fits(rmf_path, "response") as hdul:
        matrix_hdus = [hdu for hdu in list(hdul)[1:] if _is_matrix_hdu(hdu)]
        if not matrix_hdus:
            raise IngestError(f"{rmf_name}: not an RMF (no response matrix found)")
        ebounds_hdus = [hdu for hdu in list(hdul)[1:] if _is_ebounds_hdu(hdu)]
        if not ebounds_hdus:
            raise IngestError(f"{rmf_name}: the RMF has a matrix but no EBOUNDS table")
        matrix_hdu, ebounds_hdu = matrix_hdus[0], ebounds_hdus[0]
        missing = {"ENERG_LO", "ENERG_HI"} - _columns(matrix_hdu)
        if missing:
            raise IngestError(f"{rmf_name}: matrix lacks column(s) {', '.join(sorted(missing))}")

        e_min = _float_column(ebounds_hdu, "E_MIN")
        e_max = _float_column(ebounds_hdu, "E_MAX")
        n_det = e_min.size
        detchans = matrix_hdu.header.get("DETCHANS")
        if n_det == 0:
            raise IngestError(f"{rmf_name}: EBOUNDS is empty")
        if detchans is not None and int(detchans) != n_det:
            raise IngestError(
                f"{rmf_name}: the matrix has {int(detchans)} channels but EBOUNDS {n_det}"
            )
        if not (np.all(np.isfinite(e_min)) and np.all(np.isfinite(e_max))):
            raise IngestError(f"{rmf_name}: EBOUNDS holds non-finite energies")
        if np.any(e_max <= e_min):
            raise IngestError(f"{rmf_name}: EBOUNDS has channels with E_MAX <= E_MIN")
        if "CHANNEL" in _columns(ebounds_hdu):
            eb_channels = np.asarray(ebounds_hdu.data["CHANNEL"], dtype=np.int64)
            order = np.argsort(eb_channels, kind="stable")
            e_min, e_max = e_min[order], e_max[order]

        energ_lo, energ_hi = _energy_grid(matrix_hdu, rmf_name)
        rmf = _dense_matrix(matrix_hdu, n_det, rmf_name)
        if not np.all(np.isfinite(rmf)):
            raise IngestError(f"{rmf_name}: the response matrix holds non-finite values")
        normalised = float(rmf.sum(axis=1).max()) <= _NORMALISED_ROW_SUM

        area = None
        if arf_path is None and normalised:
            if not any(_is_arf_hdu(hdu) for hdu in list(hdul)[1:]):
                raise IngestError(
                    f"{rmf_name}: the RMF is normalised (no effective area) and no ARF was given"
                )
            arf_lo, arf_hi, area = _read_arf(hdul, rmf_name)

    if arf_path is not None:
        arf_name = Path(arf_path).name
        with _open_fits(arf_path, "ARF") as arf_hdul:
            arf_lo, arf_hi, area = _read_arf(arf_hdul, arf_name)
    else:
        arf_name = rmf_name
    if area is not None:
        if area.size != energ_lo.size or not (
            np.allclose(arf_lo, energ_lo, rtol=1e-4) and np.allclose(arf_hi, energ_hi, rtol=1e-4)
        ):
            raise IngestError(
                f"{arf_name}: the ARF's energy grid ({area.size} bins) does not match the "
                f"RMF's ({energ_lo.size} bins)"
            )
        if not normalised and float(np.max(np.abs(area))) > _NORMALISED_ROW_SUM:
            # An OSA 10 ARF with an OSA 11 RMF: the effective area would be counted twice.
            raise IngestError(
                f"{arf_name}: both the RMF and the ARF hold an effective area (mixed OSA versions?)"
            )
        rmf *= area[:, None]
    if not np.any(rmf > 0):
        raise IngestError(f"{rmf_name}: the response is zero everywhere")

    if channels.size != n_det:
        raise IngestError(
            f"the spectrum has {channels.size} channels but the response {rmf_name} has {n_det}"
        )
    if np.unique(channels).size != channels.size:
        raise IngestError("the spectrum lists a channel more than once")
    index = _channel_index(channels, int(channels.min()), n_det, rmf_name)
    return ResponseData(
        energ_lo=energ_lo,
        energ_hi=energ_hi,
        matrix=np.ascontiguousarray(rmf[:, index]),
        channel_e_min=e_min[index],
        channel_e_max=e_max[index],
    )


def _keyword(hdul: fits.HDUList, hdu: fits.BinTableHDU, key: str):
    """A keyword of the spectrum's table, falling back on the primary header."""
    if key in hdu.header:
        return hdu.header[key]
    return hdul[0].header.get(key)


def read_spectrum(
    pha_path: PathLike, rmf_path: PathLike, arf_path: PathLike | None = None
) -> SpectrumData:
    """Read a PHA type I spectrum and its response into a ``SpectrumData`` in counts/s.

    COUNTS are divided by EXPOSURE; STAT_ERR comes from the file, or from Poisson statistics
    (at least one count) when POISSERR is true; SYS_ERR and QUALITY come from their columns,
    their keywords, or default to 0. A channel whose rate or error is not finite (or whose
    error is not positive) is flagged bad with QUALITY = 1 unless the file flagged it already.
    Rows are returned in channel order.
    """
    name = Path(pha_path).name
    with _open_fits(pha_path, "spectrum") as hdul:
        hdu = find_spectrum_hdu(hdul)
        if hdu is None:
            if any(_is_spectrum_hdu(h) for h in list(hdul)[1:]):
                raise IngestError(f"{name}: PHA type II files (several spectra) are not supported")
            raise IngestError(f"{name}: no spectrum (PHA) table found")
        cols = _columns(hdu)
        n = len(hdu.data)
        if n == 0:
            raise IngestError(f"{name}: the spectrum has no channels")

        exposure = _keyword(hdul, hdu, "EXPOSURE")
        try:
            exposure_s = float(exposure) if exposure is not None else None
        except (TypeError, ValueError):
            exposure_s = None
        if exposure_s is not None and not (np.isfinite(exposure_s) and exposure_s > 0):
            exposure_s = None

        channel = np.asarray(hdu.data["CHANNEL"], dtype=np.int64).ravel()
        poisson = bool(_keyword(hdul, hdu, "POISSERR") or False)
        if "RATE" in cols:
            rate = _float_column(hdu, "RATE")
            scale = 1.0
        else:
            if exposure_s is None:
                raise IngestError(f"{name}: COUNTS are given without a positive EXPOSURE")
            scale = 1.0 / exposure_s
            rate = _float_column(hdu, "COUNTS") * scale
        if "STAT_ERR" in cols:
            stat_err = _float_column(hdu, "STAT_ERR") * scale
        elif poisson:
            if "RATE" in cols:
                if exposure_s is None:
                    raise IngestError(f"{name}: Poisson errors need a positive EXPOSURE")
                counts = rate * exposure_s
                scale = 1.0 / exposure_s
            else:
                counts = rate / scale
            stat_err = np.sqrt(np.maximum(counts, 1.0)) * scale
        else:
            raise IngestError(f"{name}: the spectrum has no STAT_ERR column and POISSERR is false")

        sys_err = _optional_column(hdul, hdu, "SYS_ERR", n, np.float64, name)
        quality = _optional_column(hdul, hdu, "QUALITY", n, np.int64, name)

    for label, arr in (("RATE", rate), ("STAT_ERR", stat_err)):
        if arr.shape != (n,):
            raise IngestError(f"{name}: {label} is not one value per channel")
    sys_err = np.where(np.isfinite(sys_err), sys_err, 0.0)
    unusable = ~np.isfinite(rate) | ~np.isfinite(stat_err) | (stat_err <= 0)
    quality = np.where(unusable & (quality == 0), QUALITY_BAD_DATA, quality)
    if np.all(quality != 0):
        raise IngestError(f"{name}: every channel is flagged bad or has no valid rate")

    order = np.argsort(channel, kind="stable")
    channel, rate, stat_err = channel[order], rate[order], stat_err[order]
    sys_err, quality = sys_err[order], quality[order]
    response = read_response(rmf_path, arf_path, channel)
    return SpectrumData(
        channel=channel,
        rate=rate,
        stat_err=stat_err,
        sys_err=sys_err,
        quality=quality,
        e_min=response.channel_e_min,
        e_max=response.channel_e_max,
        exposure_s=exposure_s,
        response=response,
    )


def _optional_column(
    hdul: fits.HDUList, hdu: fits.BinTableHDU, key: str, n: int, dtype, name: str
) -> np.ndarray:
    """A column, else the keyword of the same name (OGIP allows a constant), else zeros."""
    if key in _columns(hdu):
        values = np.array(hdu.data[key], dtype=dtype).ravel()
        if values.shape != (n,):
            raise IngestError(f"{name}: {key} is not one value per channel")
        return values
    value = _keyword(hdul, hdu, key)
    try:
        constant = dtype(value) if value is not None and not isinstance(value, str) else 0
    except (TypeError, ValueError):
        constant = 0
    return np.full(n, constant, dtype=dtype)
