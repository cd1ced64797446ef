"""API tokens: created from a signed-in session and shown once, stored hashed, scoped to one
clinic, revoked by their owner or the clinic's admin, refused with a reason when revoked or
expired, and their last use recorded at most once a minute."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from auditlog.models import LogEntry
from rest_framework.test import APIClient

from clinics.models import Membership
from clinics.services import staff_create
from monitoring.models import ApiToken
from tests.api.conftest import Api, make_token
from tests.auth import sign_in

pytestmark = pytest.mark.django_db


def session_client(user, *, csrf: bool = False) -> APIClient:
    client = APIClient(enforce_csrf_checks=csrf)
    sign_in(client, user)
    return client


def test_it_shows_a_new_token_once_and_stores_only_its_hash(alice, clinic_a):
    response = session_client(alice).post("/api/v1/tokens/", {"name": "EHR"}, format="json")
    assert response.status_code == 201
    token = response.json()["token"]
    assert token.startswith("bdn_") and len(token.split("_", 2)[2]) >= 43  # 256 bits, base64
    row = ApiToken.objects.get()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in {row.name, row.prefix, row.token_hash}
    assert row.clinic == clinic_a and row.user == alice
    listed = session_client(alice).get("/api/v1/tokens/").json()["results"]
    assert [t["code"] for t in listed] == [str(row.code)]
    assert "token" not in listed[0] and token not in str(listed)
    assert listed[0]["display"] == f"bdn_{row.prefix}_…"
    assert LogEntry.objects.filter(additional_data__event="api token created").count() == 1


def test_a_token_cannot_create_another_token(alice, clinic_a):
    response = Api(make_token(alice, clinic_a)).post("/api/v1/tokens/", {"name": "more"})
    assert response.status_code == 403
    assert "a token cannot create another token" in response.json()["error"]["message"]


def test_browser_writes_need_the_csrf_token(alice, clinic_a):
    response = session_client(alice, csrf=True).post("/api/v1/tokens/", {"name": "EHR"}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]["message"]


def test_someone_in_two_clinics_must_say_which(alice, clinic_a, clinic_b):
    Membership.objects.create(user=alice, clinic=clinic_b, role="therapist")
    client = session_client(alice)
    response = client.post("/api/v1/tokens/", {"name": "EHR"}, format="json")
    assert response.status_code == 400
    assert "clinic" in response.json()["error"]["fields"]
    response = client.post("/api/v1/tokens/", {"name": "EHR", "clinic": str(clinic_b.code)}, format="json")
    assert response.status_code == 201
    assert response.json()["clinic"]["code"] == str(clinic_b.code)


def test_nobody_gets_a_token_for_a_clinic_they_do_not_work_in(alice, clinic_b):
    response = session_client(alice).post(
        "/api/v1/tokens/", {"name": "x", "clinic": str(clinic_b.code)}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["clinic"] == ["You do not work in a clinic with this code."]


def test_an_expiry_in_the_past_is_refused(alice, clinic_a):
    response = session_client(alice).post(
        "/api/v1/tokens/", {"name": "x", "expires_at": "2020-01-01T00:00:00Z"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "The expiry must be in the future."


def test_a_revoked_token_is_refused_with_the_reason(alice, clinic_a):
    token = make_token(alice, clinic_a)
    code = ApiToken.objects.get().code
    api = Api(token)
    assert api.get("/api/v1/me/").status_code == 200
    assert api("DELETE", f"/api/v1/tokens/{code}/").status_code == 204
    response = api.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_revoked"
    assert "revoked" in response.json()["error"]["message"]
    assert response["WWW-Authenticate"].startswith("Bearer")
    # Revoking twice is not an error (a retried DELETE), from the browser either.
    assert session_client(alice).delete(f"/api/v1/tokens/{code}/").status_code == 204


def test_an_admin_revokes_a_colleagues_token_but_a_therapist_cannot(alice, bob, dana, clinic_a):
    make_token(alice, clinic_a)
    code = ApiToken.objects.get(user=alice).code
    assert Api(make_token(bob, clinic_a))("DELETE", f"/api/v1/tokens/{code}/").status_code == 404
    assert ApiToken.objects.get(code=code).revoked_at is None
    assert Api(make_token(dana, clinic_a))("DELETE", f"/api/v1/tokens/{code}/").status_code == 204
    revoked = ApiToken.objects.get(code=code)
    assert revoked.revoked_at is not None and revoked.revoked_by == dana


def test_admins_list_their_clinics_tokens_and_therapists_only_their_own(
    alice, bob, dana, erin, clinic_a, clinic_b
):
    make_token(alice, clinic_a)
    make_token(bob, clinic_a)
    make_token(erin, clinic_b)
    names = {
        who.email: {
            t["owner"] for t in Api(make_token(who, clinic))("GET", "/api/v1/tokens/").json()["results"]
        }
        for who, clinic in ((alice, clinic_a), (dana, clinic_a), (erin, clinic_b))
    }
    assert names == {
        "alice@a.test": {"alice@a.test"},
        "dana@a.test": {"alice@a.test", "bob@a.test", "dana@a.test"},
        "erin@b.test": {"erin@b.test"},
    }


def test_a_token_expires_and_says_so(alice, clinic_a):
    start = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        token = make_token(alice, clinic_a, expires_at=start + timedelta(days=30))
    with time_machine.travel(start + timedelta(days=29), tick=False):
        assert Api(token).get("/api/v1/me/").status_code == 200
    with time_machine.travel(start + timedelta(days=30, seconds=1), tick=False):
        response = Api(token).get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_expired"
    assert "expired on 2026-12-01" in response.json()["error"]["message"]


def test_last_use_is_written_at_most_once_a_minute(alice, clinic_a):
    start = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    token = make_token(alice, clinic_a)
    for offset, expected in ((0, 0), (30, 0), (61, 61)):
        with time_machine.travel(start + timedelta(seconds=offset), tick=False):
            Api(token).get("/api/v1/me/")
        assert ApiToken.objects.get().last_used_at == start + timedelta(seconds=expected)


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("Bearer bdn_00000000_unknown", "token_unknown"),
        ("Bearer not-a-bordin-token", "token_unknown"),
        ("Bearer", "token_malformed"),
        ("Bearer two words", "token_malformed"),
    ],
)
def test_a_bad_token_is_a_401_that_says_what_is_wrong(client, alice, header, code):
    response = client.get("/api/v1/me/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == code


def test_token_is_accepted_as_the_keyword_too(alice, clinic_a, client):
    token = make_token(alice, clinic_a)
    assert client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {token}").status_code == 200


def test_a_token_stops_working_when_its_owner_leaves_the_clinic(alice, dana, clinic_a):
    token = make_token(alice, clinic_a)
    Membership.objects.filter(user=alice, clinic=clinic_a).update(is_active=False)
    response = Api(token).get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_inactive"


def test_requests_without_credentials_are_401_with_a_bearer_challenge(client):
    response = client.get("/api/v1/patients/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert response.json()["error"]["code"] == "not_authenticated"


def test_the_token_user_is_the_actor_of_changes_in_the_audit_trail(world, alice, clinic_a):
    Api(make_token(alice, clinic_a)).post(
        f"/api/v1/flags/{world.flag.code}/acknowledge/", {"acknowledgement": "discussed"}
    )
    change = LogEntry.objects.filter(object_pk=str(world.flag.pk), action=LogEntry.Action.UPDATE).get()
    assert change.actor == alice


def test_a_multi_clinic_user_gets_one_token_per_clinic(clinic_a, clinic_b):
    """staff_create reuses the account: the same person in two clinics."""
    user = staff_create(clinic=clinic_a, email="x@x.test", role="admin")
    staff_create(clinic=clinic_b, email="x@x.test", role="therapist")
    first, second = make_token(user, clinic_a), make_token(user, clinic_b)
    clinics = {Api(t).get("/api/v1/me/").json()["memberships"][0]["role"] for t in (first, second)}
    assert clinics == {"admin", "therapist"}
    assert ApiToken.objects.filter(user=user, revoked_at=None).count() == 2
