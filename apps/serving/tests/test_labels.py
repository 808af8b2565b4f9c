"""Serving pages read right: plural forms, flash messages that name the
object, "Promote now" asks before it acts."""

import pytest
from django.test import Client

from apps.serving.models import Endpoint
from apps.serving.tests.factories import make_endpoint

pytestmark = pytest.mark.django_db


def browser_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(("minutes", "batch", "bake_text", "batch_text"), [
    (1, 1, "<dd>1 minute</dd>", "<dd>1 instance</dd>"),
    (30, 100, "<dd>30 minutes</dd>", "<dd>100 instances</dd>"),
])
def test_endpoint_page_counts_in_singular_and_plural(engineer, minutes, batch, bake_text, batch_text):
    endpoint = make_endpoint(owner=engineer, slug="qc-counts", max_batch_size=batch)
    Endpoint.objects.filter(pk=endpoint.pk).update(bake_minutes=minutes)
    html = browser_for(engineer).get("/serving/qc-counts/").content.decode()
    assert bake_text in html and batch_text in html
    if minutes == 1:
        assert "1 minutes" not in html and "1 instances" not in html
