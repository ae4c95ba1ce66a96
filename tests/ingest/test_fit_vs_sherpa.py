"""Our power-law fits against sherpa's on every fixture spectrum (sherpa is optional).

Sherpa reads the files and folds the model itself, so an agreement checks the response
reading (OSA 10/11 conventions, JEM-X channel numbering) as well as the fit. The comparison
code is shared with ``bench/fit_vs_sherpa.py``.
"""

from __future__ import annotations

import importlib.util
import sys
import warnings

import pytest

from ingest.fitting import fit_spectrum
from ingest.readers.spectrum import read_spectrum
from tests.conftest import PROJECT_DIR, shared_fixture

pytestmark = pytest.mark.optional


def _bench():
    """The bench script as a module (bench/ is a folder of scripts, not a package)."""
    path = PROJECT_DIR / "bench" / "fit_vs_sherpa.py"
    spec = importlib.util.spec_from_file_location("bench_fit_vs_sherpa", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import sherpa.astro.io  # noqa: F401
    except ImportError:
        pytest.skip("sherpa is not installed (optional: pip install sherpa)")
    return _bench()


SPECTRUM_LABELS = [
    "1A 0535+262 (ISGRI, OSA 11)",
    "3C 279 (ISGRI, OSA 10)",
    "4U 1700-377 (ISGRI, OSA 10.2)",
    "NGC 2110 (ISGRI, OSA 10, rebinned)",
    "Crab (JEM-X1)",
]


@pytest.mark.parametrize("label", SPECTRUM_LABELS)
def test_powerlaw_photon_index_agrees_with_sherpa(bench, label, tmp_path):
    spectrum = next(s for s in bench.SPECTRA if s.label == label)
    paths = [shared_fixture(getattr(spectrum, role)) for role in ("pha", "rmf", "arf")]
    ours = fit_spectrum(read_spectrum(*paths), spectrum.band_kev)[0]
    theirs = bench.sherpa_fit(spectrum, ours.used, "powerlaw", tmp_path)
    index = ours.parameter("PhoIndex").value
    assert index == pytest.approx(theirs["parameters"]["gamma"], rel=0.02)
    assert ours.statistic_value == pytest.approx(theirs["chi2"], rel=0.02)
    assert ours.dof == theirs["dof"]
