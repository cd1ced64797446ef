from __future__ import annotations

from django.http import HttpRequest

from clinics.permissions import clinics_administered, clinics_overseen


def navigation(request: HttpRequest) -> dict[str, object]:
    """The clinics the signed-in user administers, for the header's Clinic link, and those whose
    team page they see (admins and supervisors), for its Team link."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"admin_clinics": clinics_administered(user=user), "team_clinics": clinics_overseen(user=user)}
