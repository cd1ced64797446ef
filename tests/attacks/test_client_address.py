"""Issue 14, finding 6: behind the recommended reverse proxy every user had the proxy's address.

django-axes, allauth's rate limits and the audit trail read ``REMOTE_ADDR``, which behind nginx
is nginx; ten failed sign-ins from one person (under any names) then blocked everyone behind the
proxy, and "from where" in the trail was the proxy. Meanwhile django-auditlog took the first
``X-Forwarded-For`` entry as it came, so anyone could write any address into the trail.

``TRUSTED_PROXIES`` (a count of proxy hops, or a list of the proxies' networks) says which
``X-Forwarded-For`` entries to believe; ``monitoring.security.middleware.ClientAddressMiddleware``
sets the client address once, for everything after it.
"""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from allauth.usersessions.models import UserSession
from auditlog.models import LogEntry
from axes.models import AccessAttempt
from django.http import HttpResponse
from django.test import Client, RequestFactory
from rest_framework.request import Request

from clinics.models import Membership
from monitoring.api.auth import ApiRateThrottle
from monitoring.security.logs import GunicornLogger
from tests.auth import sign_in
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

PROXY = "10.0.0.1"  # nginx, on the private network
CLIENT = "203.0.113.7"  # a real client, as nginx saw it
OTHER = "203.0.113.8"  # another client behind the same proxy
FORGED = "6.6.6.6"  # what a client writes into X-Forwarded-For itself
DIRECT = "198.51.100.9"  # a client that reaches gunicorn without the proxy


def through(remote: str, forwarded: str | None = None) -> dict[str, str]:
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return extra


def sign_in_from(email: str, password: str, **extra: str):
    return Client(**extra).post("/accounts/login/", {"login": email, "password": password}, **extra)


def refused_as_too_many(response) -> bool:
    """allauth's limit: the form says so, and nobody is signed in (even with the right password)."""
    return response.status_code == 200 and "too many" in response.content.decode().lower()


def sign_in_entry(user) -> LogEntry:
    return LogEntry.objects.filter(object_pk=str(user.pk), additional_data__event="sign-in").latest("pk")


def test_without_trusted_proxies_a_forwarded_for_header_is_ignored_everywhere(client, alice, dana, settings):
    settings.TRUSTED_PROXIES = 0
    signed = sign_in_from("alice@a.test", PASSWORD, **through(DIRECT, FORGED))
    assert signed.status_code == 302
    assert sign_in_entry(alice).remote_addr == DIRECT
    assert UserSession.objects.get(user=alice).ip == DIRECT
    sign_in_from("alice@a.test", "wrong-password-1", **through(DIRECT, FORGED))
    assert AccessAttempt.objects.get().ip_address == DIRECT
    # A change recorded by django-auditlog itself (its middleware read X-Forwarded-For as it came).
    admin = sign_in(Client(**through(DIRECT, FORGED)), dana)
    membership = Membership.objects.get(user=alice)
    admin.post(
        f"/clinic/clinic-a/staff/{membership.code}/role/", {"role": "admin"}, **through(DIRECT, FORGED)
    )
    change = LogEntry.objects.filter(object_pk=str(membership.pk), action=LogEntry.Action.UPDATE).latest("pk")
    assert change.remote_addr == DIRECT


def test_through_one_trusted_proxy_the_client_it_saw_is_used(alice, settings):
    settings.TRUSTED_PROXIES = 1
    # The client's own (forged) entry comes first; nginx appends the address it saw.
    signed = sign_in_from("alice@a.test", PASSWORD, **through(PROXY, f"{FORGED}, {CLIENT}"))
    assert signed.status_code == 302
    assert sign_in_entry(alice).remote_addr == CLIENT
    assert UserSession.objects.get(user=alice).ip == CLIENT
    sign_in_from("alice@a.test", "wrong-password-1", **through(PROXY, f"{FORGED}, {CLIENT}"))
    assert AccessAttempt.objects.get().ip_address == CLIENT


def test_with_trusted_networks_only_their_header_counts(alice, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8", "fd00::/8"]
    sign_in_from("alice@a.test", PASSWORD, **through(DIRECT, FORGED))  # not one of ours: ignored
    assert sign_in_entry(alice).remote_addr == DIRECT
    sign_in_from("alice@a.test", PASSWORD, **through(PROXY, f"{FORGED}, {CLIENT}, 10.0.0.2"))
    assert sign_in_entry(alice).remote_addr == CLIENT  # the first address from the right not ours


@pytest.mark.parametrize(
    ("trusted", "remote", "forwarded", "client"),
    [
        (0, PROXY, CLIENT, PROXY),
        (1, PROXY, None, PROXY),
        (1, PROXY, CLIENT, CLIENT),
        (1, PROXY, f"{FORGED},{CLIENT}", CLIENT),
        (2, PROXY, f"{FORGED}, {CLIENT}, 10.0.0.2", CLIENT),
        (2, PROXY, CLIENT, CLIENT),  # fewer hops than proxies: the first is one of ours
        (1, PROXY, "not-an-address", PROXY),
        (1, PROXY, f"{FORGED}, ", PROXY),
        (["10.0.0.0/8"], DIRECT, CLIENT, DIRECT),
        (["10.0.0.0/8"], PROXY, f"{FORGED}, {CLIENT}", CLIENT),
        (["10.0.0.0/8"], PROXY, "10.0.0.3, 10.0.0.2", "10.0.0.3"),  # all ours: the farthest
        (["10.0.0.0/8"], PROXY, f"{CLIENT}, garbage, 10.0.0.2", "10.0.0.2"),
        (["10.0.0.0/8"], PROXY, "[2001:db8::1]", "2001:db8::1"),
        (["127.0.0.1"], "127.0.0.1", "2001:db8::1", "2001:db8::1"),
    ],
)
def test_the_client_address_rule(settings, trusted, remote, forwarded, client):
    settings.TRUSTED_PROXIES = trusted
    extra = through(remote, forwarded)
    from monitoring.security.middleware import ClientAddressMiddleware

    request = RequestFactory().get("/", **extra)
    seen = {}

    def view(req):
        seen["addr"] = req.META["REMOTE_ADDR"]
        seen["xff"] = req.META.get("HTTP_X_FORWARDED_FOR")
        return HttpResponse()

    ClientAddressMiddleware(view)(request)
    assert seen == {"addr": client, "xff": None}  # nothing after it can read the raw header
    assert request.META["BORDIN_PEER_ADDR"] == remote


def test_ten_failed_sign_ins_from_one_client_do_not_lock_out_the_others_behind_the_proxy(
    alice, bob, settings
):
    settings.TRUSTED_PROXIES = 1
    guesser = Client(**through(PROXY, CLIENT))
    for n in range(10):  # allauth allows 10 failures a minute from one address, under any names
        guesser.post(
            "/accounts/login/", {"login": f"name{n}@a.test", "password": "x" * 12}, **through(PROXY, CLIENT)
        )
    blocked = guesser.post(
        "/accounts/login/", {"login": "alice@a.test", "password": PASSWORD}, **through(PROXY, CLIENT)
    )
    assert refused_as_too_many(blocked)
    assert sign_in_from("bob@a.test", PASSWORD, **through(PROXY, OTHER)).status_code == 302
    assert sign_in_from("alice@a.test", PASSWORD, **through(PROXY, f"{OTHER}")).status_code == 302


def test_a_forged_header_does_not_escape_the_limit(alice, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    for n in range(10):
        extra = through(DIRECT, f"203.0.113.{n + 20}")  # a new "address" every time
        Client(**extra).post("/accounts/login/", {"login": f"name{n}@a.test", "password": "x" * 12}, **extra)
    assert refused_as_too_many(sign_in_from("alice@a.test", PASSWORD, **through(DIRECT, "203.0.113.99")))


def test_the_api_throttle_counts_the_client_not_the_header(settings):
    from monitoring.security.middleware import ClientAddressMiddleware

    settings.TRUSTED_PROXIES = 0
    request = RequestFactory().get("/api/v1/me/", **through(DIRECT, FORGED))
    idents = []
    ClientAddressMiddleware(
        lambda r: idents.append(ApiRateThrottle().get_ident(Request(r))) or HttpResponse()
    )(request)
    assert idents == [DIRECT]
    assert settings.REST_FRAMEWORK["NUM_PROXIES"] == 0  # DRF reads X-Forwarded-For itself otherwise


def test_the_access_log_names_the_client(alice, settings):
    """gunicorn's access line reads REMOTE_ADDR from the WSGI environ, which is request.META."""
    settings.TRUSTED_PROXIES = 1
    response = Client().get("/healthz", **through(PROXY, f"{FORGED}, {CLIENT}"))
    environ = response.wsgi_request.META
    logger = GunicornLogger(SimpleNamespace(**_gunicorn_cfg()))
    environ.setdefault("RAW_URI", "/healthz")
    atoms = logger.atoms(
        SimpleNamespace(status="200 OK", headers=[], sent=2),
        SimpleNamespace(headers=[]),
        environ,
        timedelta(milliseconds=3),
    )
    assert atoms["h"] == CLIENT


def _gunicorn_cfg() -> dict:
    from gunicorn.config import Config

    config = Config()
    return {name: setting.get() for name, setting in config.settings.items()}
