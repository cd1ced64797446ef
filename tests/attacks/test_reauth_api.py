"""Issue 14, finding 2: re-authentication bypassed through the API with a browser session, and
API tokens that never expire.

The export page sends a session whose last password confirmation is older than
ACCOUNT_REAUTHENTICATION_TIMEOUT to confirm it again; the same cookie (with ``X-CSRFToken``)
must get the same answer from the API, as JSON: 401 ``reauthentication_required``. A request
with an API token is not a browser session: the token is its own credential.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from monitoring.models import ApiToken, ExportJob
from monitoring.security import allauth
from tests.api.conftest import Api, make_token
from tests.auth import sign_in
from tests.conftest import PASSWORD, finished_export

pytestmark = pytest.mark.django_db


def stale(client: Client, settings) -> Client:
    """The session's last confirmation is a second older than the re-authentication limit."""
    session = client.session
    user_id = session["_auth_user_id"]
    at = time.time() - settings.ACCOUNT_REAUTHENTICATION_TIMEOUT - 1
    allauth.authentication_records_set(
        session=session,
        user=User.objects.get(pk=user_id),
        records=[{"method": "password", "at": at, "reauthenticated": True}],
    )
    session.save()
    return client


def browser(user, settings, *, recent: bool) -> APIClient:
    client = sign_in(APIClient(), user)
    return client if recent else stale(client, settings)


EXPORT = {"report": "session_scores", "format": "csv"}


def assert_reauthentication_required(response) -> None:
    assert response.status_code == 401, getattr(response, "content", b"")[:300]
    body = response.json()
    assert body["error"]["code"] == "reauthentication_required"
    assert set(body["error"]) == {"code", "message", "fields", "problems"}
    assert "password" in body["error"]["message"]


def test_a_stale_session_cannot_start_an_export_through_the_api(dana, clinic_a, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    page = sign_in(Client(), dana)
    stale(page, settings)
    asked = page.post("/clinic/clinic-a/exports/", {**EXPORT, "start": "", "end": ""})
    assert asked.status_code == 302 and asked["Location"].startswith("/accounts/reauthenticate/")
    api = browser(dana, settings, recent=False)
    assert_reauthentication_required(api.post("/api/v1/exports/", EXPORT, format="json"))
    assert not ExportJob.objects.exists()
    assert (
        browser(dana, settings, recent=True).post("/api/v1/exports/", EXPORT, format="json").status_code
        == 202
    )


def test_a_stale_session_cannot_download_an_export_through_the_api(dana, clinic_a, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    job = finished_export(clinic_a, dana, tmp_path)
    api = browser(dana, settings, recent=False)
    assert_reauthentication_required(api.get(f"/api/v1/exports/{job.code}/download/"))
    assert api.get(f"/api/v1/exports/{job.code}/").status_code == 200  # the status is not the data
    page = stale(sign_in(Client(), dana), settings)
    asked = page.get(f"/exports/{job.code}/download/")  # the page's download: the same rule
    assert asked.status_code == 302 and asked["Location"].startswith("/accounts/reauthenticate/")
    assert (
        browser(dana, settings, recent=True).get(f"/api/v1/exports/{job.code}/download/").status_code == 200
    )


def test_a_stale_session_cannot_create_or_revoke_tokens_through_the_api(alice, clinic_a, settings):
    api = browser(alice, settings, recent=False)
    assert_reauthentication_required(api.post("/api/v1/tokens/", {"name": "EHR"}, format="json"))
    assert not ApiToken.objects.exists()
    token = make_token(alice, clinic_a)
    code = ApiToken.objects.get().code
    assert_reauthentication_required(api.delete(f"/api/v1/tokens/{code}/"))
    assert ApiToken.objects.get().revoked_at is None
    assert Api(token).get("/api/v1/me/").status_code == 200
    assert api.get("/api/v1/tokens/").status_code == 200  # listing needs no confirmation


def test_the_csrf_header_does_not_help_a_stale_session(dana, clinic_a, settings, tmp_path):
    """The probe as sent: the cookie and X-CSRFToken of a real page."""
    settings.MEDIA_ROOT = tmp_path
    client = stale(sign_in(APIClient(enforce_csrf_checks=True), dana), settings)
    client.get("/clinic/clinic-a/exports/")  # sets the CSRF cookie
    csrf = client.cookies["csrftoken"].value
    response = client.post("/api/v1/exports/", EXPORT, format="json", HTTP_X_CSRFTOKEN=csrf)
    assert_reauthentication_required(response)


def test_confirming_the_password_opens_the_api_again(dana, clinic_a, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    client = stale(sign_in(APIClient(), dana), settings)
    assert_reauthentication_required(client.post("/api/v1/exports/", EXPORT, format="json"))
    confirmed = client.post("/accounts/reauthenticate/", {"password": PASSWORD})
    assert confirmed.status_code == 302
    assert client.post("/api/v1/exports/", EXPORT, format="json").status_code == 202


def test_a_token_is_its_own_credential(dana, clinic_a, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    token = make_token(dana, clinic_a)
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        response = Api(token).post("/api/v1/exports/", EXPORT)
    assert response.status_code == 202


# --- Tokens always expire ----------------------------------------------------------------------


def test_a_token_without_an_expiry_gets_the_default(alice, clinic_a, settings):
    created = browser(alice, settings, recent=True).post("/api/v1/tokens/", {"name": "EHR"}, format="json")
    assert created.status_code == 201
    row = ApiToken.objects.get()
    expected = timezone.now() + timedelta(days=settings.API_TOKEN_DEFAULT_DAYS)
    assert row.expires_at is not None and abs((row.expires_at - expected).total_seconds()) < 60
    assert created.json()["expires_at"] is not None


def test_a_token_longer_than_the_maximum_is_refused(alice, clinic_a, settings):
    client = browser(alice, settings, recent=True)
    too_long = timezone.now() + timedelta(days=settings.API_TOKEN_MAX_DAYS + 1)
    refused = client.post(
        "/api/v1/tokens/", {"name": "EHR", "expires_at": too_long.isoformat()}, format="json"
    )
    assert refused.status_code == 400
    assert f"at most {settings.API_TOKEN_MAX_DAYS} days" in refused.json()["error"]["message"]
    far = client.post("/api/v1/tokens/", {"name": "EHR", "expires_at": "9999-12-31T23:59:59Z"}, format="json")
    assert far.status_code == 400 and far.json()["error"]["code"] == "invalid"
    assert not ApiToken.objects.exists()
    explicit_null = client.post("/api/v1/tokens/", {"name": "EHR", "expires_at": None}, format="json")
    assert explicit_null.status_code == 201 and ApiToken.objects.get().expires_at is not None


@pytest.mark.parametrize("days", ["", "400", "99999999", "-3", "ten"])
def test_the_token_page_bounds_the_lifetime_too(alice, clinic_a, settings, days):
    page = sign_in(Client(), alice)
    response = page.post("/account/api-tokens/", {"name": "EHR", "clinic": str(clinic_a.code), "days": days})
    assert response.status_code in (200, 400)
    if days == "":
        row = ApiToken.objects.get()
        assert row.expires_at is not None
        left = (row.expires_at - timezone.now()).days
        assert left in (settings.API_TOKEN_DEFAULT_DAYS - 1, settings.API_TOKEN_DEFAULT_DAYS)
    else:
        assert not ApiToken.objects.exists()
        text = response.content.decode()
        assert f"at most {settings.API_TOKEN_MAX_DAYS} days" in text or "number of days" in text


def test_an_old_token_without_an_expiry_expires_after_the_maximum(alice, clinic_a, settings):
    token = make_token(alice, clinic_a)
    ApiToken.objects.update(
        expires_at=None, created_at=timezone.now() - timedelta(days=settings.API_TOKEN_MAX_DAYS + 1)
    )
    response = Api(token).get("/api/v1/me/")
    assert response.status_code == 401 and response.json()["error"]["code"] == "token_expired"
