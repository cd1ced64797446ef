"""Reads of patients and sessions that apply the access rules (``clinics.permissions``): every
page and endpoint that shows a patient reaches it through one of these, and gets a 404 for
anything the user may not see."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Count, Q, QuerySet
from django.shortcuts import get_object_or_404

from clinics.models import Patient, Session


def patient_list_for_user(*, user: User | AnonymousUser) -> QuerySet[Patient]:
    """Active patients the user may see, with their number of sessions held."""
    return (
        Patient.objects.visible_to(user)
        .filter(is_active=True)
        .select_related("therapist", "clinic")
        .annotate(sessions_held=Count("episodes__sessions", filter=Q(episodes__sessions__status="held")))
        .order_by("label")
    )


def patient_get_for_user(*, user: User | AnonymousUser, code: object) -> Patient:
    """The patient with this code, or 404 if it does not exist or the user may not see it."""
    return get_object_or_404(
        Patient.objects.visible_to(user).select_related("clinic", "therapist"), code=code
    )


def session_get_for_user(*, user: User | AnonymousUser, code: object) -> Session:
    return get_object_or_404(
        Session.objects.filter(episode__patient__in=Patient.objects.visible_to(user)).select_related(
            "episode__patient__clinic", "episode__therapist"
        ),
        code=code,
    )
