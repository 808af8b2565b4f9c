"""Errors raised by the drift core on input it cannot compute on."""


class DriftInputError(ValueError):
    """A column cannot be tested as asked (empty, unknown method, wrong kind)."""
