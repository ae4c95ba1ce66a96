"""A staticfiles finder that serves Plotly.js from the installed ``plotly`` package.

The package ships ``plotly.min.js`` in its data folder; exposing just that file (as
``vendor/plotly.min.js``) keeps a 4 MB minified bundle out of the repository and the rest of
the package's data (example data sets, a widget bundle) out of ``collectstatic``. No CDN: the
site works offline.
"""

from __future__ import annotations

from pathlib import Path

from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import Error
from django.core.files.storage import FileSystemStorage

PREFIX = "vendor"
FILE_NAME = "plotly.min.js"


def plotly_folder() -> Path | None:
    try:
        import plotly
    except ImportError:
        return None
    folder = Path(plotly.__file__).resolve().parent / "package_data"
    return folder if (folder / FILE_NAME).is_file() else None


class PlotlyFinder(BaseFinder):
    """Finds ``vendor/plotly.min.js`` (and nothing else) in the plotly package."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        folder = plotly_folder()
        self.storage = None
        if folder is not None:
            self.storage = FileSystemStorage(location=str(folder))
            self.storage.prefix = PREFIX

    def check(self, **kwargs):
        if self.storage is None:
            return [
                Error(
                    "plotly.min.js was not found in the installed plotly package",
                    hint="pip install plotly (a dependency of the project)",
                    id="gallery.E001",
                )
            ]
        return []

    def find(self, path, find_all=False, **kwargs):
        if self.storage is not None and path == f"{PREFIX}/{FILE_NAME}":
            found = self.storage.path(FILE_NAME)
            return [found] if find_all else found
        return [] if find_all else None

    def list(self, ignore_patterns):
        if self.storage is not None:
            yield FILE_NAME, self.storage
