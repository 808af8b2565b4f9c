"""The lineage registry: an app registers the links it knows in ``ready()``;
a lower app's page asks for a link by its model and name and gets None
while no installed app provides it."""

from __future__ import annotations

import pytest

from apps.core import lineage
from apps.core.models import ApiKey, User


@pytest.fixture
def provided():
    """A link "api_keys" from users to their API keys, registered for one test."""
    link = lineage.LineageLink(
        source="core.User", name="api_keys", permission_via=None,
        objects=lambda users: ApiKey.objects.filter(user__in=users.values("pk")),
        describe=lambda key: {"id": key.pk, "name": key.name}, select_related=("user",))
    assert lineage.link(User, "api_keys") is None
    lineage.register(lineage.LineageProvider(app_label="core", links=(link,)))
    yield link
    lineage._links.pop(("core.user", "api_keys"))


def test_a_link_is_found_by_model_and_name_only_once_registered(provided):
    assert lineage.link(User, "api_keys") is provided
    assert lineage.link(User(), "api_keys") is provided, "an instance finds its model's links"
    assert lineage.links_from(User) == {"api_keys": provided}
    assert lineage.link(User, "keys") is None
    assert lineage.link(ApiKey, "api_keys") is None


@pytest.mark.django_db
def test_a_link_queries_the_objects_of_one_object_or_of_a_queryset(provided, make_user):
    from apps.core.services import api_key_create

    alice, bob = make_user(username="alice"), make_user(username="bob")
    api_key_create(user=alice, name="first")
    api_key_create(user=alice, name="second")
    assert [provided.describe(key)["name"] for key in provided.of(alice)] == ["second", "first"], "newest first"
    assert list(provided.of(bob)) == []
    assert provided.of(User.objects.filter(pk__in=[alice.pk, bob.pk])).count() == 2
