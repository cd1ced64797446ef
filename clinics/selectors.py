"""Reads of clinics, patients and sessions that apply the access rules: every page and endpoint
that shows a patient reaches it through one of these (404 for anything the user may not see)."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Count, Q, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404

from clinics.models import Clinic, Membership, Patient, Session


def patients_visible_to(*, user: User | AnonymousUser) -> QuerySet[Patient]:
    """Every patient the user may see: a therapist their own, an admin their clinic's.

    The one access rule for patient data; every page and endpoint reaches patients through it.
    """
    if not user.is_authenticated:
        return Patient.objects.none()
    memberships = Membership.objects.filter(user=user, is_active=True)
    admin_clinics = memberships.filter(role=Membership.Role.ADMIN).values("clinic")
    therapist_clinics = memberships.filter(role=Membership.Role.THERAPIST).values("clinic")
    return Patient.objects.filter(
        Q(clinic__in=admin_clinics) | Q(clinic__in=therapist_clinics, therapist=user)
    )


def patient_list_for_user(*, user: User | AnonymousUser) -> QuerySet[Patient]:
    """Active patients the user may see, with their number of sessions held."""
    return (
        patients_visible_to(user=user)
        .filter(is_active=True)
        .select_related("therapist", "clinic")
        .annotate(sessions_held=Count("episodes__sessions", filter=Q(episodes__sessions__status="held")))
        .order_by("label")
    )


def patient_get_for_user(*, user: User | AnonymousUser, code: object) -> Patient:
    """The patient with this code, or 404 if it does not exist or the user may not see it."""
    return get_object_or_404(patients_visible_to(user=user).select_related("clinic", "therapist"), code=code)


def session_get_for_user(*, user: User | AnonymousUser, code: object) -> Session:
    return get_object_or_404(
        Session.objects.filter(episode__patient__in=patients_visible_to(user=user)).select_related(
            "episode__patient__clinic", "episode__therapist"
        ),
        code=code,
    )


def clinic_for_admin(*, user: User | AnonymousUser, slug: str) -> Clinic:
    """The clinic, if the user is one of its active admins; 404 for everyone else."""
    if not user.is_authenticated:
        raise Http404
    return get_object_or_404(
        Clinic.objects.filter(
            memberships__user=user, memberships__role=Membership.Role.ADMIN, memberships__is_active=True
        ),
        slug=slug,
    )


def clinics_administered(*, user: User | AnonymousUser) -> list[Clinic]:
    if not user.is_authenticated:
        return []
    return list(
        Clinic.objects.filter(
            memberships__user=user, memberships__role=Membership.Role.ADMIN, memberships__is_active=True
        ).order_by("name")
    )
