"""Scoping: a token sees what its user sees in the pages, within the token's clinic only. Lists
never contain another clinic's rows; a browser session sees everything the pages show."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from clinics.models import Membership, Patient
from monitoring.models import ExportJob
from tests.api.conftest import Api, World, make_token
from tests.auth import sign_in

pytestmark = pytest.mark.django_db

LISTS = (
    "/api/v1/patients/",
    "/api/v1/sessions/",
    "/api/v1/responses/",
    "/api/v1/flags/",
    "/api/v1/safety-alerts/",
    "/api/v1/caseload/",
    "/api/v1/staff/",
    "/api/v1/tokens/",
    "/api/v1/exports/",
)


def codes_of_clinic_a(world: World) -> set[str]:
    return {
        str(c)
        for c in (
            world.patient.code,
            world.unepisoded.code,
            world.episode.code,
            world.answered.code,
            world.held.code,
            world.flag.code,
            world.alert.code,
            world.job.code,
            world.spare_token.code,
            world.patient.clinic.code,
        )
    }


@pytest.mark.parametrize("url", LISTS)
@pytest.mark.parametrize("role", ["other clinic", "other therapist"])
def test_lists_never_include_another_clinics_rows(url, role, tokens, world):
    body = Api(tokens[role]).get(url).json()
    assert body["count"] == len(body["results"])
    text = json.dumps(body)
    assert not [code for code in codes_of_clinic_a(world) if code in text]
    assert "P.A." not in text and "alice" not in text


@pytest.mark.parametrize("url", LISTS)
def test_the_same_lists_show_clinic_a_to_its_admin(url, tokens, world):
    """The other side of the previous test: the rows are there, for those who may see them."""
    expected = {
        "/api/v1/patients/": world.patient.code,
        "/api/v1/sessions/": world.answered.code,
        "/api/v1/responses/": world.answered.code,
        "/api/v1/flags/": world.flag.code,
        "/api/v1/safety-alerts/": world.alert.code,
        "/api/v1/caseload/": world.patient.code,
        "/api/v1/staff/": world.patient.clinic.code,
        "/api/v1/tokens/": world.spare_token.code,
        "/api/v1/exports/": world.job.code,
    }[url]
    assert str(expected) in json.dumps(Api(tokens["admin"]).get(url).json()["results"])


def test_an_admin_of_two_clinics_sees_only_the_tokens_clinic(world, dana, clinic_b):
    Membership.objects.create(user=dana, clinic=clinic_b, role="admin")
    client = APIClient()
    sign_in(client, dana)
    in_session = {p["label"] for p in client.get("/api/v1/patients/").json()["results"]}
    assert in_session == {"P.A.", "Q.A.", "P.B."}
    api = Api(make_token(dana, clinic_b))
    assert {p["label"] for p in api.get("/api/v1/patients/").json()["results"]} == {"P.B."}
    assert api.get(f"/api/v1/patients/{world.patient.code}/").status_code == 404
    assert api.get(f"/api/v1/flags/{world.flag.code}/").status_code == 404
    assert api.get(f"/api/v1/exports/{world.job.code}/").status_code == 404
    assert {r["patient"]["label"] for r in api.get("/api/v1/caseload/").json()["results"]} == {"P.B."}
    assert [m["clinic"]["name"] for m in api.get("/api/v1/me/").json()["memberships"]] == ["Clinic B"]
    # ... and it exports clinic B, never A, whatever the body says.
    response = api.post(
        "/api/v1/exports/", {"report": "flags", "format": "csv", "clinic": str(world.patient.clinic.code)}
    )
    assert response.status_code == 400
    assert ExportJob.objects.filter(clinic=world.patient.clinic).count() == 1  # the world's own job


def test_a_therapist_token_sees_only_their_own_patients_even_if_they_administer_another_clinic(
    world, bob, clinic_b
):
    Membership.objects.create(user=bob, clinic=clinic_b, role="admin")
    Patient.objects.create(clinic=world.patient.clinic, label="B.A.", therapist=bob)
    api = Api(make_token(bob, world.patient.clinic))
    assert [p["label"] for p in api.get("/api/v1/patients/").json()["results"]] == ["B.A."]
    assert api.get(f"/api/v1/patients/{world.patient.code}/").status_code == 404
    # Admin rights in clinic B do not make bob an admin through clinic A's token.
    response = api.post(
        "/api/v1/patients/", {"label": "New", "therapist": "00000000-0000-0000-0000-000000000000"}
    )
    assert response.status_code == 403


def test_not_found_says_the_same_for_another_clinics_object_and_for_nothing(tokens, world):
    api = Api(tokens["other clinic"])
    theirs = api.get(f"/api/v1/patients/{world.patient.code}/")
    nothing = api.get("/api/v1/patients/00000000-0000-0000-0000-000000000000/")
    assert theirs.status_code == nothing.status_code == 404
    assert theirs.json() == nothing.json()
