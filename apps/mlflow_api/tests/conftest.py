import pytest
from rest_framework.test import APIClient

BASE = "/api/2.0/mlflow/"


class Mlflow:
    """An MLflow REST caller: ``call("runs/get", run_id=..)`` GETs or POSTs
    as MLflow's client does and returns (status, json)."""

    def __init__(self, client: APIClient):
        self.client = client

    def get(self, route: str, **params):
        response = self.client.get(BASE + route, params)
        return response.status_code, response.json()

    def post(self, route: str, **body):
        response = self.client.post(BASE + route, body, format="json")
        return response.status_code, response.json()


@pytest.fixture
def scientist(make_user):
    return make_user("Data Scientist", username="sci")


@pytest.fixture
def api_key(scientist):
    from apps.core.services import api_key_create

    return api_key_create(user=scientist, name="mlflow").raw_key


@pytest.fixture
def mlflow(api_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    return Mlflow(client)


@pytest.fixture
def mlflow_as(db):
    def _as(user):
        from apps.core.services import api_key_create

        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(user=user, name='k').raw_key}")
        return Mlflow(client)

    return _as
