from __future__ import annotations

from django.http import HttpRequest

from clinics.models import Membership
from clinics.permissions import clinics_administered, clinics_overseen


def navigation(request: HttpRequest) -> dict[str, object]:
    """The clinics the signed-in user administers, for the header's Clinic link, and those whose
    team page they see (admins and supervisors), for its Team link; and whether they hand the
    tablet to patients (a therapist or an admin somewhere: a supervisor only looks)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "admin_clinics": clinics_administered(user=user),
        "team_clinics": clinics_overseen(user=user),
        "hands_on": Membership.objects.reaching(user)
        .filter(role__in=[Membership.Role.ADMIN, Membership.Role.THERAPIST])
        .exists,
    }
