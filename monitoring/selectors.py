"""Reads. Every query that returns patient data starts here and applies the access rules."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Q, QuerySet

from clinics.models import Membership, Patient


def patient_list_for_user(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Patient]:
    """Active patients the user may see: a therapist their own, an admin their clinic's."""
    if not user.is_authenticated:
        return Patient.objects.none()
    memberships = Membership.objects.filter(user=user, is_active=True)
    admin_clinics = memberships.filter(role=Membership.Role.ADMIN).values("clinic")
    therapist_clinics = memberships.filter(role=Membership.Role.THERAPIST).values("clinic")
    return (
        Patient.objects.filter(is_active=True)
        .filter(Q(clinic__in=admin_clinics) | Q(clinic__in=therapist_clinics, therapist=user))
        .select_related("therapist", "clinic")
        .annotate(sessions_held=Count("episodes__sessions", filter=Q(episodes__sessions__status="held")))
        .order_by("label")
    )
