from __future__ import annotations

from datetime import date

import pytest
from django.core.management import call_command

from clinics.models import Clinic, Membership, Patient, SupervisorAssignment
from monitoring.models import Answer, Flag, Response, SafetyAlert

pytestmark = pytest.mark.django_db
TODAY = date(2026, 11, 20)


def snapshot() -> list[tuple]:
    return list(
        Answer.objects.order_by(
            "response__session__episode__patient__label",
            "response__session__number",
            "response__rater",
            "item__number",
        ).values_list(
            "response__session__episode__patient__label",
            "response__session__number",
            "response__session__date",
            "response__rater",
            "item__number",
            "value",
        )
    )


def test_the_demo_is_deterministic(capsys):
    call_command("seed_demo", patients=12, today=TODAY)
    first = snapshot()
    call_command("seed_demo", patients=12, today=TODAY, reset=True)
    assert snapshot() == first
    assert len(first) > 12 * 6 * 12


def test_the_demo_is_idempotent(capsys):
    call_command("seed_demo", patients=12, today=TODAY)
    counts = (Patient.objects.count(), Response.objects.count(), Flag.objects.count())
    call_command("seed_demo", patients=12, today=TODAY)
    assert "nothing changed" in capsys.readouterr().out
    assert (Patient.objects.count(), Response.objects.count(), Flag.objects.count()) == counts
    assert Clinic.objects.filter(slug="demo").count() == 1


def test_a_demo_made_before_the_supervisor_role_gets_its_supervisor(capsys):
    call_command("seed_demo", patients=12, today=TODAY)
    Membership.objects.filter(user__email="supervisor@demo.bordin.test").delete()
    counts = (Patient.objects.count(), Response.objects.count(), Flag.objects.count())
    call_command("seed_demo", patients=12, today=TODAY)
    assert "supervisor login supervisor@demo.bordin.test was added" in capsys.readouterr().out
    supervised = SupervisorAssignment.objects.filter(supervisor__user__email="supervisor@demo.bordin.test")
    assert supervised.count() == 2
    assert (Patient.objects.count(), Response.objects.count(), Flag.objects.count()) == counts
    call_command("seed_demo", patients=12, today=TODAY)
    assert "nothing changed" in capsys.readouterr().out


def test_the_demo_has_staff_and_every_kind_of_flag(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):  # the analysis runs when the demo commits
        call_command("seed_demo", today=TODAY)
    clinic = Clinic.objects.get(slug="demo")
    roles = sorted(Membership.objects.filter(clinic=clinic).values_list("role", flat=True))
    assert roles == ["admin", "supervisor", "therapist", "therapist", "therapist"]
    supervised = SupervisorAssignment.objects.filter(supervisor__user__email="supervisor@demo.bordin.test")
    assert sorted(supervised.values_list("therapist__user__email", flat=True)) == [
        "alice@demo.bordin.test",
        "bob@demo.bordin.test",
    ]
    assert 38 <= clinic.patients.filter(is_active=True).count() <= 42
    assert clinic.patients.filter(is_active=False, episodes__ended_on__isnull=False).count() == 40
    assert set(Flag.objects.values_list("kind", flat=True)) == {
        "rupture",
        "repair",
        "unrepaired",
        "decline",
        "sudden_gain",
        "sudden_loss",
        "low_alliance",
        "perspective_gap",  # Alice rates her sessions too
    }
    assert Response.objects.filter(rater="therapist").exists()
    # Some patients have not yet answered for their last held session.
    waiting = [
        p
        for p in clinic.patients.filter(is_active=True)
        if p.episodes.get().sessions.filter(status="held").exclude(responses__rater="patient").exists()
    ]
    assert 3 <= len(waiting) <= 8

    # Symptoms go with every answered session; one safety alert is open, the others followed up.
    assert clinic.outcome_measures == ["phq9", "gad7"]
    alliance = Response.objects.filter(measure="alliance", rater="patient").count()
    assert Response.objects.filter(measure="phq9").count() == alliance
    assert Response.objects.filter(measure="gad7").count() == alliance
    assert SafetyAlert.objects.open().count() == 1
    assert SafetyAlert.objects.exclude(followed_up_at=None).exclude(follow_up="").exists()
