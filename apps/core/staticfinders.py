"""Serves plotly.js from the installed plotly package as ``vendor/plotly.min.js``,
so the browser never needs the internet and the version always matches the
Python library that builds the figures."""

from pathlib import Path

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

PLOTLY_DIR = Path(plotly.__file__).parent / "package_data"
SERVED_AS = "vendor/plotly.min.js"


class PlotlyFinder(BaseFinder):
    def __init__(self, *args, **kwargs):
        self.storage = FileSystemStorage(location=str(PLOTLY_DIR))
        self.storage.prefix = "vendor"

    def check(self, **kwargs):
        return []

    def find(self, path, find_all=False, **kwargs):
        if path != SERVED_AS:
            # An empty list either way, as Django's own finders answer: a None
            # would end up in finders.find()'s list of matches, and a missing
            # static file would then be a 500 instead of a 404 under DEBUG.
            return []
        match = str(PLOTLY_DIR / "plotly.min.js")
        return [match] if find_all else match

    def list(self, ignore_patterns):
        yield "plotly.min.js", self.storage
