import pytest


@pytest.fixture(scope="module")
def api_objects(django_db_setup, django_db_blocker):
    """tests/api_seed.py's objects, made once per module inside a transaction
    rolled back at its end; each test runs in a savepoint within it (the
    ``db`` fixture)."""
    from django.db import transaction

    from tests.api_seed import seed_api_objects

    with django_db_blocker.unblock(), transaction.atomic():
        yield seed_api_objects()
        transaction.set_rollback(True)
