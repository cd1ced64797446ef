"""Writes for clinics, staff, patients, episodes and sessions."""

from __future__ import annotations

from datetime import date

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.db import IntegrityError, transaction

from clinics.errors import ApplicationError
from clinics.models import Clinic, Episode, Membership, Patient, Session


def staff_create(*, clinic: Clinic, email: str, role: str, password: str | None = None, name: str = "") -> AbstractUser:
    """Create (or reuse) the user with ``email`` and give them ``role`` in ``clinic``."""
    User = get_user_model()
    email = email.strip().lower()
    first, _, last = name.partition(" ")
    user, created = User.objects.get_or_create(
        username=email, defaults={"email": email, "first_name": first, "last_name": last}
    )
    if created:
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save()
    Membership.objects.update_or_create(user=user, clinic=clinic, defaults={"role": role, "is_active": True})
    return user


def patient_create(
    *, clinic: Clinic, label: str, therapist: AbstractUser, external_id: str = "", language: str = "en"
) -> Patient:
    if not Membership.objects.filter(clinic=clinic, user=therapist, is_active=True).exists():
        raise ApplicationError("The therapist is not a member of this clinic.")
    try:
        with transaction.atomic():
            return Patient.objects.create(
                clinic=clinic, label=label.strip(), external_id=external_id.strip(), therapist=therapist, language=language
            )
    except IntegrityError as exc:
        raise ApplicationError(f"A patient labelled '{label}' or with that external id already exists.") from exc


def episode_open(*, patient: Patient, started_on: date, treatment: str = Episode.Treatment.OTHER) -> Episode:
    if patient.therapist is None:
        raise ApplicationError("Assign a therapist before opening an episode of care.")
    try:
        with transaction.atomic():
            return Episode.objects.create(
                patient=patient, therapist=patient.therapist, started_on=started_on, treatment=treatment
            )
    except IntegrityError as exc:
        raise ApplicationError("This patient already has an open episode of care; close it first.") from exc


def session_create(*, episode: Episode, date: date, status: str = Session.Status.SCHEDULED) -> Session:
    """Add the next session of an episode (numbered after the last one)."""
    with transaction.atomic():
        last = episode.sessions.select_for_update().order_by("-number").values_list("number", flat=True).first()
        return Session.objects.create(episode=episode, number=(last or 0) + 1, date=date, status=status)
