"""Request fields shared by the apps' serializers."""

from rest_framework import serializers

# BigAutoField keys; apps/core/schema.py's ID_PATTERN bounds ids in paths the same way.
MAX_ID = 10**18 - 1
# PositiveIntegerField values such as version numbers stay below 2**31.
MAX_NUMBER = 10**9 - 1


class IdField(serializers.IntegerField):
    """The id of another object in a request body: a whole number within the
    key's range, so a number too large for the database is a 400, not an
    overflow in the query."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)
