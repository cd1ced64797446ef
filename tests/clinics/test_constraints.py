from __future__ import annotations

from datetime import date

import pytest
from django.db import IntegrityError, transaction

from clinics.models import Episode, Patient, Session

pytestmark = pytest.mark.django_db


def refused(make) -> bool:
    try:
        with transaction.atomic():
            make()
    except IntegrityError:
        return True
    return False


def test_it_refuses_a_second_session_with_the_same_number(episode, session):
    assert refused(lambda: Session.objects.create(episode=episode, number=1, date=date(2026, 9, 8)))


def test_it_refuses_session_number_zero(episode):
    assert refused(lambda: Session.objects.create(episode=episode, number=0, date=date(2026, 9, 8)))


def test_it_refuses_an_unknown_session_status(episode):
    assert refused(
        lambda: Session.objects.create(episode=episode, number=2, date=date(2026, 9, 8), status="maybe")
    )


def test_it_allows_one_open_episode_per_patient(patient, alice, episode):
    assert refused(
        lambda: Episode.objects.create(patient=patient, therapist=alice, started_on=date(2026, 10, 1))
    )


def test_it_allows_a_new_episode_once_the_old_one_is_closed(patient, alice, episode):
    episode.ended_on = date(2026, 9, 30)
    episode.save()
    Episode.objects.create(patient=patient, therapist=alice, started_on=date(2026, 10, 1))
    assert patient.episodes.count() == 2


def test_it_refuses_an_episode_ending_before_it_starts(patient, alice):
    assert refused(
        lambda: Episode.objects.create(
            patient=patient, therapist=alice, started_on=date(2026, 10, 1), ended_on=date(2026, 9, 1)
        )
    )


def test_it_refuses_two_patients_with_one_label_in_a_clinic(clinic_a, alice, patient):
    assert refused(lambda: Patient.objects.create(clinic=clinic_a, label="P.A.", therapist=alice))


def test_it_allows_the_same_label_in_another_clinic(clinic_b, charlie, patient):
    Patient.objects.create(clinic=clinic_b, label="P.A.", therapist=charlie)


def test_it_refuses_a_duplicate_external_id_but_allows_many_blank(clinic_a, alice, patient):
    Patient.objects.create(clinic=clinic_a, label="X", therapist=alice)
    Patient.objects.create(clinic=clinic_a, label="Y", therapist=alice)
    assert refused(
        lambda: Patient.objects.create(clinic=clinic_a, label="Z", therapist=alice, external_id="EXT-1")
    )


def test_a_patient_belongs_to_exactly_one_clinic(alice):
    assert refused(lambda: Patient.objects.create(label="nowhere", therapist=alice))
