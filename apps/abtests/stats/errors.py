"""The one error a caller of the statistics core can cause.

It is a ``ValueError`` so plain Python callers can catch it as such; the
future endpoint maps it onto the API's ``invalid_request`` error and reports
``field`` in the details, so the user sees which input was wrong.
"""

from __future__ import annotations


class StatsInputError(ValueError):
    """Invalid input to the statistics core; ``field`` names the offending input (e.g. ``arms[1].n``)."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")
