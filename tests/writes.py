"""Sequences of writes for the property tests (tests/flags/test_snapshots.py,
tests/care/test_page_cache.py): every path by which what the pages show can change."""

from __future__ import annotations

from datetime import date, time, timedelta

from django.db import transaction
from hypothesis import strategies as st

from clinics.appointments import schedule_set
from clinics.models import Clinic, Episode, Patient, Session
from clinics.services import clinic_settings_update, patient_transfer, patient_update, session_create
from monitoring import tasks
from monitoring.analytics.simulate import simulate_cohort
from monitoring.clinic_admin.services import patient_erase
from monitoring.collection.importing import items_import_csv, responses_import
from monitoring.collection.invitations import invitation_create, invitation_revoke
from monitoring.collection.responses import response_enter, submission_create
from monitoring.collection.sessions import session_update
from monitoring.flags.services import flag_acknowledge, flag_unacknowledge
from monitoring.models import Flag


def patients_with_episodes(clinic: Clinic, therapist, n: int = 3) -> list[Patient]:
    patients = []
    for i in range(n):
        patient = Patient.objects.create(clinic=clinic, label=f"H{i}", therapist=therapist)
        Episode.objects.create(patient=patient, therapist=therapist, started_on=date(2026, 1, 5))
        patients.append(patient)
    return patients


WRITES = st.lists(
    st.one_of(
        st.tuples(st.just("form"), st.integers(0, 2), st.integers(1, 5)),
        st.tuples(st.just("paper"), st.integers(0, 2), st.integers(1, 5)),
        st.tuples(st.just("import"), st.integers(0, 10_000), st.integers(3, 6)),
        st.tuples(
            st.sampled_from(["ack", "unack", "no_show", "schedule", "label", "link", "transfer"]),
            st.integers(0, 2),
            st.just(0),
        ),
        st.tuples(st.just("erase"), st.integers(0, 2), st.just(0)),
        st.tuples(st.just("sensitivity"), st.sampled_from(["strict", "standard", "sensitive"]), st.just(0)),
    ),
    min_size=1,
    max_size=6,
)


def write(kind, which, arg, *, step, patients, clinic, alice, bob, dana) -> None:
    if kind == "import":
        cohort = simulate_cohort(1, seed=which, sessions=(arg, arg), scenarios={"rupture_unrepaired": 1})
        file = items_import_csv(cohort.items, first_date=date(2026, 1, 5), prefix=f"I{step}-")
        responses_import(clinic=clinic, therapist=alice, file=file)
        return
    if kind == "sensitivity":
        clinic_settings_update(clinic=clinic, sensitivity=which)
        transaction.on_commit(lambda: tasks.clinic_estimate_refresh.enqueue(clinic.pk))
        return
    patient = Patient.objects.filter(pk=patients[which].pk).first()
    if patient is None:
        return
    episode = patient.episodes.filter(ended_on=None).first()
    if kind == "erase":
        patient_erase(patient=patient, by=dana, confirm=patient.label)
    elif kind == "transfer":
        patient_transfer(
            patient=patient, therapist=bob if patient.therapist_id == alice.pk else alice, on=date(2026, 6, 1)
        )
    elif kind == "label":
        patient_update(
            patient=patient,
            label=f"{patient.label}x",
            external_id=patient.external_id,
            language=patient.language,
            contact_email=patient.contact_email,
            contact_phone=patient.contact_phone,
        )
    elif kind == "schedule":
        schedule_set(
            patient=patient,
            repeat="weekly",
            time=time(10),
            by=alice,
            starts_on=date.today() + timedelta(days=3),
        )
    elif episode is None:
        return
    elif kind in ("ack", "unack"):
        flags = Flag.objects.filter(episode=episode).order_by("-session__number")
        if kind == "ack" and (flag := flags.filter(acknowledgement="").first()):
            flag_acknowledge(flag=flag, user=alice, acknowledgement="discussed")
        if kind == "unack" and (flag := flags.exclude(acknowledgement="").first()):
            flag_unacknowledge(flag=flag, user=alice)
    else:
        last = episode.sessions.order_by("-date").first()
        when = (last.date if last else episode.started_on) + timedelta(days=7)
        if kind == "no_show":
            session = session_create(episode=episode, date=when)
            session_update(session=session, user=alice, status=Session.Status.NO_SHOW)
            return
        session = session_create(episode=episode, date=when, status=Session.Status.HELD)
        answers = {n: (arg + n) % 5 + 1 for n in range(1, 13)}
        if kind == "paper":
            response_enter(session=session, rater="patient", answers=answers, user=alice)
            return
        invitation, _ = invitation_create(session=session, created_by=alice)
        if kind == "link":  # a link made and withdrawn: the page shows no answers, yet it changed
            invitation_revoke(invitation=invitation)
            return
        submission_create(invitation=invitation, answers=answers, message=f"Note {step}")


def applied(writes, *, clinic, alice, bob, dana, capture):
    """Three patients of alice's, then each write committed as in production (the analysis runs
    on commit: ``capture`` is pytest-django's django_capture_on_commit_callbacks); yields
    ``(step, kind, patients)`` after each."""
    patients = patients_with_episodes(clinic, alice)
    for step, (kind, which, arg) in enumerate(writes):
        with capture(execute=True):
            write(
                kind, which, arg, step=step, patients=patients, clinic=clinic, alice=alice, bob=bob, dana=dana
            )
        yield step, kind, patients
