"""Serves plotly.js from the installed plotly package as
``vendor/plotly-<version>.min.js`` (and, for older links, ``vendor/plotly.min.js``),
so the browser never needs the internet and the version always matches the
Python library that builds the figures. The versioned name is what pages
load: it changes with the bundle, so it can be cached for a year
(``WHITENOISE_IMMUTABLE_FILE_TEST``)."""

from pathlib import Path

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

PLOTLY_DIR = Path(plotly.__file__).parent / "package_data"
VERSIONED_NAME = f"plotly-{plotly.__version__}.min.js"
SERVED_AS = f"vendor/{VERSIONED_NAME}"
NAMES = (VERSIONED_NAME, "plotly.min.js")


class _PlotlyStorage(FileSystemStorage):
    """The package's plotly.min.js under both names (for collectstatic)."""

    def path(self, name):
        return super().path("plotly.min.js" if name in NAMES else name)


class PlotlyFinder(BaseFinder):
    def __init__(self, *args, **kwargs):
        self.storage = _PlotlyStorage(location=str(PLOTLY_DIR))
        self.storage.prefix = "vendor"

    def check(self, **kwargs):
        return []

    def find(self, path, find_all=False, **kwargs):
        if path not in {f"vendor/{name}" for name in NAMES}:
            # An empty list either way, as Django's own finders answer: a None
            # would end up in finders.find()'s list of matches, and a missing
            # static file would then be a 500 instead of a 404 under DEBUG.
            return []
        match = str(PLOTLY_DIR / "plotly.min.js")
        return [match] if find_all else match

    def list(self, ignore_patterns):
        for name in NAMES:
            yield name, self.storage
