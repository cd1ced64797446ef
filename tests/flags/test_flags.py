"""Stored flags: computed on submission, idempotent, prospective, with the numbers behind them."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from clinics.models import Session
from monitoring.collection.invitations import invitation_create
from monitoring.collection.responses import response_create
from monitoring.flags.services import clinic_estimate_refresh, episode_flags_refresh
from monitoring.models import ClinicEstimate, Flag, Notification

pytestmark = pytest.mark.django_db

STEADY = [{n: 4 for n in range(1, 13)}, {**{n: 4 for n in range(1, 13)}, 3: 5}]
DROP = {n: 3 for n in range(1, 13)}
DROP[3] = 2  # total 2.92: a clear V below a usual level of about 4.0


def add_session(episode, instrument, number: int, answers: dict[int, int]) -> Session:
    session = Session.objects.create(
        episode=episode, number=number, date=date(2026, 9, 1) + timedelta(weeks=number), status="held"
    )
    response_create(session=session, instrument=instrument, answers=answers, source="link")
    return session


@pytest.fixture
def v_shape(episode, instrument):
    for number in range(1, 5):
        add_session(episode, instrument, number, STEADY[number % 2])
    add_session(episode, instrument, 5, DROP)
    return episode


def kinds(episode) -> list[tuple[int, str, str]]:
    return sorted(Flag.objects.filter(episode=episode).values_list("session__number", "scale", "kind"))


def test_a_v_shaped_drop_is_stored_as_a_rupture_then_a_repair(v_shape, instrument, alice):
    new = episode_flags_refresh(episode_id=v_shape.pk)
    assert (5, "total", "rupture") in kinds(v_shape)
    rupture = Flag.objects.get(episode=v_shape, scale="total", kind="rupture")
    assert rupture in new
    assert "below this patient's usual level" in rupture.explanation
    assert rupture.detail["baseline"] == pytest.approx(4.04, abs=0.01)
    assert rupture.detail["s_used"] > 0 and rupture.threshold < rupture.detail["baseline"]
    assert rupture.config["k"] == 2.5 and rupture.estimate is not None
    add_session(v_shape, instrument, 6, STEADY[0])
    episode_flags_refresh(episode_id=v_shape.pk)
    repair = Flag.objects.get(episode=v_shape, scale="total", kind="repair")
    assert (repair.session.number, repair.detail["rupture_session"]) == (6, 5)


def test_recomputing_stores_nothing_twice(v_shape):
    episode_flags_refresh(episode_id=v_shape.pk)
    before = kinds(v_shape)
    assert episode_flags_refresh(episode_id=v_shape.pk) == []
    assert kinds(v_shape) == before


def test_a_rupture_notifies_the_therapist_once(v_shape, alice):
    episode_flags_refresh(episode_id=v_shape.pk)
    episode_flags_refresh(episode_id=v_shape.pk)
    notified = Notification.objects.filter(user=alice)
    assert notified.filter(flag__kind="rupture", flag__scale="total").count() == 1
    assert not notified.filter(flag__kind="repair").exists()


def test_a_re_estimate_never_rewrites_or_adds_earlier_flags(v_shape, instrument, clinic_a):
    episode_flags_refresh(episode_id=v_shape.pk)
    stored = {f.pk: (f.magnitude, f.threshold, f.explanation, f.estimate_id) for f in Flag.objects.all()}
    estimate = clinic_estimate_refresh(clinic=clinic_a)
    clinic_a.sensitivity = "sensitive"  # k = 2: would flag more at earlier sessions
    clinic_a.save()
    add_session(v_shape, instrument, 6, STEADY[0])
    episode_flags_refresh(episode_id=v_shape.pk)
    after = {f.pk: (f.magnitude, f.threshold, f.explanation, f.estimate_id) for f in Flag.objects.all()}
    assert {pk: after[pk] for pk in stored} == stored
    new = Flag.objects.exclude(pk__in=stored)
    assert new.exists() and all(f.session.number == 6 and f.estimate == estimate for f in new)
    assert all(f.config["k"] == 2.0 for f in new)
    assert ClinicEstimate.objects.filter(clinic=clinic_a).count() == 2


def test_a_submission_through_the_link_stores_the_flags(
    client, v_shape, alice, django_capture_on_commit_callbacks
):
    session = Session.objects.create(episode=v_shape, number=6, date=date(2026, 10, 20), status="held")
    _, token = invitation_create(session=session, created_by=alice)
    Flag.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/f/{token}/", {f"item_{n}": "4" for n in range(1, 13)})
    assert (5, "total", "rupture") in kinds(v_shape)
    assert (6, "total", "repair") in kinds(v_shape)


def test_a_stable_patient_gets_no_flags(episode, instrument):
    for number in range(1, 9):
        add_session(episode, instrument, number, STEADY[number % 2])
    episode_flags_refresh(episode_id=episode.pk)
    assert kinds(episode) == []


def test_a_paper_form_entered_late_gets_flags_of_its_own(episode, instrument):
    """Sessions 1-4 and 6-8 are in and analysed; the paper form of session 5, a clear drop,
    arrives afterwards. It gets its rupture; the flags stored for later sessions stay as they were."""
    sessions = {}
    for number in (1, 2, 3, 4, 6, 7, 8):
        sessions[number] = add_session(episode, instrument, number, STEADY[number % 2])
    episode_flags_refresh(episode_id=episode.pk)
    before = {f.pk: (f.session.number, f.kind, f.magnitude) for f in Flag.objects.filter(episode=episode)}
    late = Session.objects.create(episode=episode, number=5, date=date(2026, 10, 6), status="held")
    response_create(session=late, instrument=instrument, answers=DROP, source="staff")
    new = episode_flags_refresh(episode_id=episode.pk)
    assert {(f.session.number, f.scale, f.kind) for f in new} >= {(5, "total", "rupture")}
    assert all(f.session.number == 5 for f in new)
    after = {f.pk: (f.session.number, f.kind, f.magnitude) for f in Flag.objects.filter(episode=episode)}
    assert {pk: after[pk] for pk in before} == before
    assert episode_flags_refresh(episode_id=episode.pk) == []  # and only once


def test_flags_record_whether_they_raised_attention(v_shape):
    episode_flags_refresh(episode_id=v_shape.pk)
    total = Flag.objects.get(episode=v_shape, scale="total", kind="rupture")
    assert total.alarm is True
    assert Flag.objects.filter(episode=v_shape, alarm=False).exists()  # subscale shares explain


def test_changing_the_budget_calibrates_the_thresholds_to_it(
    client, dana, clinic_a, v_shape, django_capture_on_commit_callbacks
):
    from tests.auth import sign_in

    episode_flags_refresh(episode_id=v_shape.pk)
    first = ClinicEstimate.objects.filter(clinic=clinic_a).latest()
    assert first.parameters["calibration"]["budget"] == 1.0
    sign_in(client, dana)
    data = {
        "name": clinic_a.name,
        "instrument_code": "bordin-alliance",
        "default_language": "en",
        "link_expiry_hours": 72,
        "reminder_delay_hours": 24,
        "sensitivity": "sensitive",
        "retention_years": 10,
        "idle_timeout_minutes": 30,
    }
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/clinic/{clinic_a.slug}/settings/", data).status_code == 302
    latest = ClinicEstimate.objects.filter(clinic=clinic_a).latest()
    assert latest.pk != first.pk and latest.parameters["calibration"]["budget"] == 2.0
    # The effective rupture threshold (k times stringency) is lower for the larger budget.
    k_eff = {
        e.pk: e.parameters["calibration"]["k"] * e.parameters["calibration"]["stringency"]
        for e in (first, latest)
    }
    assert k_eff[latest.pk] < k_eff[first.pk]
