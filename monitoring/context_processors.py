from __future__ import annotations

from django.http import HttpRequest

from clinics.models import Clinic, Membership
from clinics.permissions import memberships_reaching


def navigation(request: HttpRequest) -> dict[str, object]:
    """The clinics the signed-in user administers, for the header's Clinic link, and those whose
    team page they see (admins and supervisors), for its Team link; and whether they hand the
    tablet to patients (a therapist or an admin somewhere: a supervisor only looks). From one
    read of their memberships."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    memberships = memberships_reaching(user=user)
    roles = Membership.Role

    def clinics(*wanted: str) -> list[Clinic]:
        return list({m.clinic_id: m.clinic for m in memberships if m.role in wanted}.values())

    return {
        "admin_clinics": clinics(roles.ADMIN),
        "team_clinics": clinics(roles.ADMIN, roles.SUPERVISOR),
        "hands_on": any(m.role in (roles.ADMIN, roles.THERAPIST) for m in memberships),
    }
