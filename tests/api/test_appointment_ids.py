"""A session pushed under the health record's appointment id (``external_id``, unique in the
clinic): a retried push must not create a second session."""

from __future__ import annotations

import pytest

from clinics.models import Session
from tests.api.conftest import Api, World, make_token

pytestmark = pytest.mark.django_db

ANSWERS = [{"item": n, "value": 4} for n in range(1, 13)]


@pytest.fixture
def admin(dana, clinic_a) -> Api:
    return Api(make_token(dana, clinic_a))


def sessions_url(patient) -> str:
    return f"/api/v1/patients/{patient.code}/sessions/"


def test_a_retried_appointment_push_returns_the_session_it_made(admin, world: World):
    body = {"date": "2026-10-06", "status": "held", "external_id": "APPT-77"}
    first = admin.post(sessions_url(world.patient), body)
    assert first.status_code == 201, first.json()
    assert first.json()["external_id"] == "APPT-77" and first.json()["form_link"]
    again = admin.post(sessions_url(world.patient), body)
    assert again.status_code == 200
    assert again.json() == first.json()  # the same session, the same link
    assert Session.objects.filter(episode=world.episode).count() == 4


def test_the_same_appointment_id_for_another_patient_is_a_conflict(admin, world: World, clinic_a, alice):
    from clinics.models import Episode, Patient

    other = Patient.objects.create(clinic=clinic_a, label="O.A.", therapist=alice)
    Episode.objects.create(patient=other, therapist=alice, started_on=world.episode.started_on)
    assert (
        admin.post(sessions_url(world.patient), {"date": "2026-10-06", "external_id": "APPT-1"}).status_code
        == 201
    )
    taken = admin.post(sessions_url(other), {"date": "2026-10-06", "external_id": "APPT-1"})
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "external_id_taken"
    assert not Session.objects.filter(episode__patient=other).exists()


def test_another_clinic_may_use_the_same_appointment_id(admin, world: World, erin, clinic_b):
    from clinics.models import Episode

    Episode.objects.filter(patient=world.other_patient).update(ended_on=None)
    assert (
        admin.post(sessions_url(world.patient), {"date": "2026-10-06", "external_id": "X"}).status_code == 201
    )
    other = Api(make_token(erin, clinic_b)).post(
        sessions_url(world.other_patient), {"date": "2026-10-06", "external_id": "X"}
    )
    assert other.status_code == 201


def test_a_session_without_an_appointment_id_is_created_each_time(admin, world: World):
    for _ in range(2):
        assert admin.post(sessions_url(world.patient), {"date": "2026-10-06"}).status_code == 201
    assert Session.objects.filter(episode=world.episode).count() == 5
