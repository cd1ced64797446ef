"""Who may do what: the one permission vocabulary of pages, API, exports and commands.

Two roles per clinic (``Membership.Role``): a therapist sees their own patients; a clinic admin
sees every patient of the clinic and manages staff, settings, exports and the audit trail.
Only active memberships count (``Membership.objects.reaching``: minus the clinics that signed
this session out). The rules are QuerySet methods on the models
(``Patient.objects.visible_to``, ``Membership.objects.admins``, ``Clinic.objects.administered_by``)
and the functions here, which pages, the API and exports call; nothing else decides access.

Reads of something the user may not see are 404 (``*_get_for_user`` in the selectors), so an
outsider cannot tell a forbidden object from a missing one. Actions refused to someone who may
see the object (a therapist asking for an export) are ``PermissionDenied`` (403 in the API).
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from clinics.models import Clinic, Membership, Patient, Session


def patients_visible_to(*, user: User | AnonymousUser) -> QuerySet[Patient]:
    """Every patient the user may see: a therapist their own, an admin their clinic's."""
    return Patient.objects.visible_to(user)


def clinics_administered(*, user: User | AnonymousUser) -> QuerySet[Clinic]:
    return Clinic.objects.administered_by(user).order_by("name")


def is_clinic_admin(*, user: User | AnonymousUser, clinic_id: int) -> bool:
    return (
        user.is_authenticated
        and Membership.objects.reaching(user).filter(role=Membership.Role.ADMIN, clinic_id=clinic_id).exists()
    )


def works_in(*, user: User | AnonymousUser, clinic_id: int) -> bool:
    """An active member of the clinic, in any role."""
    return user.is_authenticated and Membership.objects.reaching(user).filter(clinic_id=clinic_id).exists()


def clinic_for_admin(*, user: User | AnonymousUser, slug: str) -> Clinic:
    """The clinic, if the user is one of its active admins; 404 for everyone else (therapists
    included: they cannot tell an admin page from a missing one)."""
    return get_object_or_404(Clinic.objects.administered_by(user), slug=slug)


def require_clinic_admin(*, user: User | AnonymousUser, clinic: Clinic, action: str) -> None:
    """Refuse ``action`` (e.g. "export its data") unless the user is an active admin of ``clinic``."""
    if not is_clinic_admin(user=user, clinic_id=clinic.pk):
        raise PermissionDenied(f"Only the clinic's admins may {action}.")


def may_rate_session(*, user: User | AnonymousUser, session: Session) -> bool:
    """The therapist's own rating of a session: only the episode's therapist, and only when the
    clinic has therapist ratings turned on."""
    return bool(
        user.is_authenticated
        and session.episode.patient.clinic.therapist_rating_enabled
        and session.episode.therapist_id == user.pk
    )
