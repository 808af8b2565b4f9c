"""Webhook destinations (SSRF): URLs that lead to loopback, link-local,
private, multicast, reserved or unspecified addresses are refused when the
subscription is saved and again, on the resolved address, at every send —
before any connection is made. The resolver is stubbed and every connection
except to 127.0.0.1 raises, so these tests never reach anything but the local
receiver."""

import socket

import pytest
from django.db import transaction

from apps.core.choices import DeliveryStatus
from apps.core.errors import ValidationFailed
from apps.core.models import WebhookDelivery, WebhookSubscription
from apps.core.tests.receiver import Receiver
from apps.core.webhooks import outbound, services

pytestmark = pytest.mark.django_db

REAL_GETADDRINFO = socket.getaddrinfo
PUBLIC = "93.184.216.34"


class Network:
    """A stub resolver (name → answers, one list per lookup, the last one
    repeated) and a record of every connection the code tried."""

    def __init__(self, monkeypatch):
        self.answers: dict[str, list[list[str]]] = {}
        self.lookups: list[str] = []
        self.connections: list = []
        real_connect = socket.socket.connect
        network = self

        def getaddrinfo(host, port, *args, **kwargs):
            host = host.decode() if isinstance(host, bytes) else host
            if outbound.parse_ip_literal(host) is not None and host not in network.answers:
                return REAL_GETADDRINFO(host, port, *args, **kwargs)
            network.lookups.append(host)
            if host not in network.answers:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            queue = network.answers[host]
            addresses = queue.pop(0) if len(queue) > 1 else queue[0]
            return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                     (a, port or 0, 0, 0) if ":" in a else (a, port or 0)) for a in addresses]

        def connect(sock, address):
            network.connections.append(address)
            if address[0] != "127.0.0.1":
                raise AssertionError(f"the code tried to connect to {address}")
            return real_connect(sock, address)

        def create_connection(address, *args, **kwargs):
            network.connections.append(address)
            raise AssertionError(f"the code tried to connect to {address}")

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        monkeypatch.setattr(socket.socket, "connect", connect)
        monkeypatch.setattr(socket, "create_connection", create_connection)

    def resolve(self, host: str, *answers: list[str]) -> None:
        self.answers[host] = list(answers)


@pytest.fixture
def network(monkeypatch, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = []
    return Network(monkeypatch)


@pytest.fixture
def admin(make_user):
    return make_user("Admin", username="hookadmin")


REFUSED_LITERALS = [
    "http://127.0.0.1:8000/hook",
    "http://2130706433/hook",          # 127.0.0.1 as one decimal number
    "http://0177.0.0.1/hook",          # octal
    "http://0x7f.1/hook",              # hex, short form
    "http://127.1/hook",
    "http://0.0.0.0/hook",
    "http://0/hook",
    "http://[::1]/hook",
    "http://[::]/hook",
    "http://[::ffff:127.0.0.1]/hook",  # IPv4-mapped IPv6
    "http://[::ffff:a9fe:a9fe]/hook",  # 169.254.169.254, mapped
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.5/hook",
    "http://172.16.3.4/hook",
    "https://192.168.1.10/hook",
    "http://100.64.0.1/hook",          # carrier-grade NAT
    "http://[fc00::1]/hook",
    "http://[fe80::1]/hook",
    "http://224.0.0.1/hook",
    "http://[ff02::1]/hook",
    "http://240.0.0.1/hook",           # reserved
    "http://[2002:a00:5::]/hook",      # 6to4 wrapping 10.0.0.5
    "http://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 of 169.254.169.254
]

REFUSED_NAMES = {
    "metadata.lab.test": ["169.254.169.254"],
    "intranet.lab.test": ["10.0.0.5"],
    "loop6.lab.test": ["::1"],
    "ula.lab.test": ["fc00::1"],
    "multicast.lab.test": ["224.0.0.1"],
    "split.lab.test": [PUBLIC, "10.0.0.5"],  # one bad address among good ones is enough
}


@pytest.mark.parametrize("url", REFUSED_LITERALS)
def test_api_refuses_webhook_urls_to_non_public_addresses(network, admin, client_for, url):
    api = client_for(admin)
    response = api.post("/api/v1/webhooks/", {"name": "probe", "url": url}, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    assert "url" in error["details"]["fields"]
    assert not WebhookSubscription.objects.exists()
    assert network.connections == []


@pytest.mark.parametrize("host", sorted(REFUSED_NAMES))
def test_api_refuses_names_that_resolve_to_non_public_addresses(network, admin, client_for, host):
    network.resolve(host, REFUSED_NAMES[host])
    api = client_for(admin)
    response = api.post("/api/v1/webhooks/", {"name": "probe", "url": f"https://{host}/hook"}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["details"]["fields"]["url"]
    assert not WebhookSubscription.objects.exists()
    # An existing subscription cannot be moved there either.
    network.resolve("hooks.partner.test", [PUBLIC])
    created = api.post("/api/v1/webhooks/", {"name": "ok", "url": "https://hooks.partner.test/x"}, format="json")
    assert created.status_code == 201, created.content
    moved = api.patch(f"/api/v1/webhooks/{created.json()['id']}/", {"url": f"https://{host}/hook"}, format="json")
    assert moved.status_code == 400
    assert WebhookSubscription.objects.get().url == "https://hooks.partner.test/x"
    assert network.connections == []


def _stored_subscription(admin, url):
    # As if saved before the check existed, or DNS changed since.
    return WebhookSubscription.objects.create(name="old", url=url, secret="s" * 32, created_by=admin)


def _queue_test_delivery(subscription, admin) -> WebhookDelivery:
    with transaction.atomic():
        return services.webhook_send_test(subscription=subscription, actor=admin)


@pytest.mark.parametrize("answer", [["10.0.0.5"], ["169.254.169.254"], ["::1"], ["fc00::1"], ["224.0.0.1"],
                                    ["127.0.0.1"], [PUBLIC, "192.168.0.7"]])
def test_send_refuses_a_non_public_resolved_address_before_connecting(network, admin, answer):
    network.resolve("hooks.partner.test", answer)
    delivery = _queue_test_delivery(_stored_subscription(admin, "http://hooks.partner.test/x"), admin)

    outcome = services.webhook_delivery_attempt(delivery_id=delivery.pk)

    assert network.connections == []
    assert outcome.status == DeliveryStatus.FAILED and outcome.retry_in is None  # retrying cannot help
    attempt = delivery.attempts.get()
    assert attempt.status_code is None and attempt.error.startswith("Refused:")


def test_send_refuses_a_stored_private_literal_before_connecting(network, admin):
    delivery = _queue_test_delivery(_stored_subscription(admin, "http://[::ffff:10.0.0.5]:8080/x"), admin)
    assert services.webhook_delivery_attempt(delivery_id=delivery.pk).status == DeliveryStatus.FAILED
    assert network.connections == []


def test_dns_rebinding_public_when_saved_private_when_sent_is_refused(network, admin):
    network.resolve("rebind.partner.test", [PUBLIC], ["10.0.0.5"])
    subscription = services.webhook_subscription_create(actor=admin, name="partner",
                                                        url="http://rebind.partner.test/hook")
    delivery = _queue_test_delivery(subscription, admin)

    outcome = services.webhook_delivery_attempt(delivery_id=delivery.pk)

    assert network.lookups == ["rebind.partner.test", "rebind.partner.test"]
    assert network.connections == []
    assert outcome.status == DeliveryStatus.FAILED
    assert "10.0.0.5" in delivery.attempts.get().error


def test_send_connects_to_the_address_it_checked_with_the_original_host(network, admin, settings):
    """The name is resolved once per send and the connection goes to that
    address: a later answer (here a private one) is never used."""
    settings.WEBHOOK_ALLOWED_HOSTS = ["receiver.lab.test"]
    with Receiver([200]) as receiver:
        port = receiver.server.server_address[1]
        network.resolve("receiver.lab.test", ["127.0.0.1"], ["127.0.0.1"], ["10.0.0.5"])
        subscription = services.webhook_subscription_create(actor=admin, name="lab",
                                                            url=f"http://receiver.lab.test:{port}/hook?x=1")
        delivery = _queue_test_delivery(subscription, admin)
        outcome = services.webhook_delivery_attempt(delivery_id=delivery.pk)

    assert outcome.status == DeliveryStatus.SUCCEEDED
    assert network.lookups == ["receiver.lab.test", "receiver.lab.test"]
    assert network.connections == [("127.0.0.1", port)]
    (request,) = receiver.requests
    assert request["headers"]["Host"] == f"receiver.lab.test:{port}"
    assert request["path"] == "/hook?x=1"


def test_loopback_is_refused_unless_allowed_by_name(network, admin, settings):
    with Receiver([200]) as receiver:
        url = receiver.url
        with pytest.raises(ValidationFailed):
            services.webhook_subscription_create(actor=admin, name="local", url=url)
        settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
        subscription = services.webhook_subscription_create(actor=admin, name="local", url=url)
        delivery = _queue_test_delivery(subscription, admin)
        assert services.webhook_delivery_attempt(delivery_id=delivery.pk).status == DeliveryStatus.SUCCEEDED
    assert len(receiver.requests) == 1


@pytest.mark.parametrize("address", ["8.8.8.8", PUBLIC, "2606:4700:4700::1111"])
def test_public_addresses_pass(address):
    assert outbound.address_refusal(outbound.parse_ip_literal(address)) is None
