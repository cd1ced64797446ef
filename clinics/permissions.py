"""Who may do what: the one permission vocabulary of pages, API, exports and commands.

Three roles per clinic (``Membership.Role``): a therapist sees their own patients; a clinic admin
sees every patient of the clinic and manages staff, settings, exports and the audit trail; a
supervisor sees the patients of the therapists assigned to them (``SupervisorAssignment``) and
changes nothing: every write, form link and export asks ``may_change`` (``require_may_change``).
Only active memberships count (``Membership.objects.reaching``: minus the clinics that signed
this session out). The rules are QuerySet methods on the models
(``Patient.objects.visible_to``, ``Membership.objects.admins``, ``Clinic.objects.administered_by``)
and the functions here, which pages, the API and exports call; nothing else decides access.

Reads of something the user may not see are 404 (``*_get_for_user`` in the selectors), so an
outsider cannot tell a forbidden object from a missing one. Actions refused to someone who may
see the object (a therapist asking for an export, a supervisor acknowledging a flag) are
``PermissionDenied`` (403, in the API too), with a message that says who may.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from clinics.models import Clinic, Membership, Patient, Session

#: The attribute of a request's user holding their memberships, read once per request.
_REACHING = "bordin_memberships_reaching"


def memberships_reaching(*, user: User | AnonymousUser) -> list[Membership]:
    """The user's memberships that reach a clinic in this request (``Membership.objects.reaching``),
    with their clinics, by clinic name; read once per request (the user object lives as long as
    the request) for the header's links and the pages' role checks."""
    if not user.is_authenticated:
        return []
    found: list[Membership] | None = getattr(user, _REACHING, None)
    if found is None:
        found = list(
            Membership.objects.reaching(user).select_related("clinic").order_by("clinic__name", "pk")
        )
        setattr(user, _REACHING, found)
    return found


def patients_visible_to(*, user: User | AnonymousUser) -> QuerySet[Patient]:
    """Every patient the user may see: a therapist their own, an admin their clinic's, a
    supervisor their assigned therapists'."""
    return Patient.objects.visible_to(user)


def patients_changeable_by(*, user: User | AnonymousUser) -> QuerySet[Patient]:
    """Every patient the user may act on: a therapist their own, an admin their clinic's."""
    return Patient.objects.changeable_by(user)


#: Why a supervisor (or anyone who may only see a patient) is refused an action.
READ_ONLY_MESSAGE = (
    "You see this patient as a supervisor, read-only: only the patient's therapist and the "
    "clinic's admins can {action}."
)


def may_change(*, user: User | AnonymousUser, patient: Patient) -> bool:
    """Whether ``user`` may act on ``patient`` (a write, a form link, an export): the patient's
    therapist or a clinic admin. False for a supervisor, who may only look."""
    return Patient.objects.changeable_by(user).filter(pk=patient.pk).exists()


def require_may_change(*, user: User | AnonymousUser, patient: Patient, action: str) -> None:
    """Refuse ``action`` (e.g. "acknowledge flags") on a patient the user may see but not change
    (403, naming who may). Called after the lookup, which is 404 for a patient not seen at all."""
    if not may_change(user=user, patient=patient):
        raise PermissionDenied(READ_ONLY_MESSAGE.format(action=action))


def therapists_overseen_by(*, user: User | AnonymousUser) -> QuerySet[Membership]:
    """The therapists whose work the user oversees: a clinic's therapists for its admins, the
    assigned ones for a supervisor (``Membership.objects.overseen_by``)."""
    return Membership.objects.overseen_by(user)


def clinics_overseen(*, user: User | AnonymousUser) -> QuerySet[Clinic]:
    """The clinics whose team page the user may open: as admin or as supervisor."""
    return Clinic.objects.overseen_by(user).order_by("name")


def clinic_for_team(*, user: User | AnonymousUser, slug: str) -> Clinic:
    """The clinic, if the user is one of its active admins or supervisors; 404 for everyone else."""
    return get_object_or_404(Clinic.objects.overseen_by(user), slug=slug)


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
