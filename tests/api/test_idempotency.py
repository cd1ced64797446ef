"""``Idempotency-Key`` on the API's create operations: a retry gets the first answer again and
creates nothing; the same key with another body is refused; keys expire after a day."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from clinics.models import Session
from monitoring.models import ExportJob, IdempotencyKey
from monitoring.models import Response as FormResponse
from tests.api.conftest import Api, World, make_token, membership_code

pytestmark = pytest.mark.django_db

ANSWERS = [{"item": n, "value": 4} for n in range(1, 13)]


@pytest.fixture
def admin(dana, clinic_a) -> Api:
    return Api(make_token(dana, clinic_a))


def sessions_url(patient) -> str:
    return f"/api/v1/patients/{patient.code}/sessions/"


KEY = {"HTTP_IDEMPOTENCY_KEY": "3f1c9a54-6c53-4f0e-9b1e-1d2a3b4c5d6e"}


def test_the_same_key_and_body_replay_the_first_answer(admin, world: World):
    url = f"/api/v1/sessions/{world.held.code}/responses/"
    first = admin.post(url, {"answers": ANSWERS}, **KEY)
    assert first.status_code == 201
    again = admin.post(url, {"answers": ANSWERS}, **KEY)
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert FormResponse.objects.filter(session=world.held, measure="alliance").count() == 1
    # Without the key the second form is the usual 409.
    assert admin.post(url, {"answers": ANSWERS}).status_code == 409


def test_the_same_key_with_another_body_is_refused(admin, world: World):
    url = f"/api/v1/patients/{world.patient.code}/sessions/"
    assert admin.post(url, {"date": "2026-10-06"}, **KEY).status_code == 201
    changed = admin.post(url, {"date": "2026-10-07"}, **KEY)
    assert changed.status_code == 422
    assert changed.json()["error"]["code"] == "idempotency_key_reused"
    assert Session.objects.filter(episode=world.episode).count() == 4


def test_keys_belong_to_their_user_and_expire_after_a_day(admin, world: World, dana, clinic_a):
    url = "/api/v1/exports/"
    body = {"report": "session_scores", "format": "csv"}
    first = admin.post(url, body, **KEY)
    assert first.status_code == 202
    assert admin.post(url, body, **KEY).json()["code"] == first.json()["code"]
    assert admin.post(url, body, **KEY)["Location"] == first["Location"]
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        later = admin.post(url, body, **KEY)
    assert later.status_code == 202 and later.json()["code"] != first.json()["code"]
    assert ExportJob.objects.filter(requested_by=dana).count() == 2 + 1  # with the world's job


def test_a_failed_create_frees_its_key(admin, world: World):
    url = f"/api/v1/patients/{world.patient.code}/sessions/"
    assert admin.post(url, {"date": "1800-01-01"}, **KEY).status_code == 400
    assert admin.post(url, {"date": "2026-10-06"}, **KEY).status_code == 201


def test_a_malformed_key_is_a_400(admin, world: World):
    bad = admin.post(
        f"/api/v1/patients/{world.patient.code}/sessions/", {"date": "2026-10-06"}, HTTP_IDEMPOTENCY_KEY="a b"
    )
    assert bad.status_code == 400 and "Idempotency-Key" in bad.json()["error"]["fields"]


def test_the_stored_answer_keeps_no_form_link_and_no_key(admin, world: World):
    url = f"/api/v1/patients/{world.patient.code}/sessions/"
    first = admin.post(url, {"date": "2026-10-06", "status": "held"}, **KEY)
    row = IdempotencyKey.objects.get()
    assert "form_link" not in row.response and KEY["HTTP_IDEMPOTENCY_KEY"] not in row.key_hash
    assert admin.post(url, {"date": "2026-10-06", "status": "held"}, **KEY).json() == first.json()


def test_old_keys_are_purged(admin, world: World):
    admin.post(f"/api/v1/patients/{world.patient.code}/sessions/", {"date": "2026-10-06"}, **KEY)
    call_command("purge_idempotency_keys")
    assert IdempotencyKey.objects.count() == 1
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))
    call_command("purge_idempotency_keys")
    assert IdempotencyKey.objects.count() == 0


def test_erasing_a_patient_removes_the_stored_answers_that_speak_of_them(
    admin, world: World, dana, alice, clinic_a
):
    from monitoring.clinic_admin.services import patient_erase

    admin.post(f"/api/v1/sessions/{world.held.code}/responses/", {"answers": ANSWERS}, **KEY)
    other = admin.post(
        "/api/v1/patients/",
        {"label": "Q.Q.", "therapist": membership_code(alice, clinic_a)},
        HTTP_IDEMPOTENCY_KEY="9d2e7a10-1b4c-4e8f-a6d3-0c5b7e9f1a2b",
    )
    assert other.status_code == 201, other.json()
    assert IdempotencyKey.objects.count() == 2
    patient_erase(patient=world.patient, by=dana, confirm=world.patient.label)
    kept = IdempotencyKey.objects.get()  # only the other patient's answer is kept
    assert kept.response["label"] == "Q.Q."
